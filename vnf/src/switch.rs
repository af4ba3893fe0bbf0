//! The running switch: ports built from the manifest, the forwarding table, and the plan
//! of which worker polls which queue.

use std::sync::Arc;

use deploy::{Manifest, PortKind, SocketMode};
use virtio::{Doorbell, Mode, PortQueues};

use crate::l2::L2;
use crate::l3::Router;

/// Everything the workers share, read-only after start (but for the MAC tables and the
/// neighbor cache).
pub struct Switch {
    pub ports: Vec<Arc<PortQueues>>,
    /// For each port, what happens to the frames it receives.
    pub fwd: Vec<Fwd>,
    pub l2: Arc<L2>,
    /// The router, if the manifest has router interfaces.
    pub router: Option<Arc<Router>>,
}

/// A port's forwarding: the manifest lets a port be cross-connected or bridged, not both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fwd {
    /// Every frame leaves unchanged on this other port.
    CrossConnect(u16),
    /// Each frame is classified: the port or some of its subinterfaces are bridge
    /// members or router interfaces.
    Classify,
    /// The port itself is router interface `.0`, and it has no subinterfaces.
    Route(u16),
    /// Configured for nothing: frames are dropped as `no_destination`.
    Drop,
}

/// One worker's share of the work.
pub struct WorkerPlan {
    pub id: usize,
    pub cpu: Option<usize>,
    /// (port, queue pair) receive queues this worker polls.
    pub rx: Vec<(u16, u16)>,
    /// For each port, the queue pair this worker transmits on.
    pub tx_pair: Vec<u16>,
    pub doorbell: Arc<Doorbell>,
}

impl Switch {
    pub fn build(m: &Manifest) -> std::io::Result<Switch> {
        let ports: Vec<Arc<PortQueues>> = m
            .ports
            .iter()
            .map(|p| match &p.kind {
                PortKind::VhostUser(v) => {
                    Arc::new(PortQueues::new(&p.name, v.queue_pairs, v.mac, p.mtu))
                }
            })
            .collect();
        let index = |name: &str| {
            m.ports
                .iter()
                .position(|p| p.name == name)
                .map(|i| i as u16)
        };
        let l2 = L2::build(m);
        let router = Router::build(m, &l2)?.map(Arc::new);
        let mut fwd: Vec<Fwd> = (0..ports.len() as u16)
            .map(|p| {
                let port = &l2.ports[p as usize];
                match l2.interfaces[port.main as usize].routed {
                    Some(ri) if port.subifs.is_empty() => Fwd::Route(ri),
                    _ if l2.is_bridged(p) || l2.is_routed(p) => Fwd::Classify,
                    _ => Fwd::Drop,
                }
            })
            .collect();
        for x in &m.cross_connects {
            // The manifest was validated: both names exist and neither is bridged.
            if let (Some(a), Some(b)) = (index(&x.a), index(&x.b)) {
                fwd[a as usize] = Fwd::CrossConnect(b);
                fwd[b as usize] = Fwd::CrossConnect(a);
            }
        }
        Ok(Switch {
            ports,
            fwd,
            l2: Arc::new(l2),
            router,
        })
    }

    /// Spreads receive queues over the workers round-robin, pair by pair, so that each
    /// port's pairs land on different workers; each worker transmits on pair
    /// `worker % pairs` of every port, so a port with fewer pairs than workers shares
    /// its transmit queues (the slot lock makes that safe).
    pub fn plan(&self, m: &Manifest) -> Vec<WorkerPlan> {
        let n = m.workers.count;
        let mut plans: Vec<WorkerPlan> = (0..n)
            .map(|id| WorkerPlan {
                id,
                cpu: m.workers.cpus.as_ref().map(|c| c[id]),
                rx: Vec::new(),
                tx_pair: self
                    .ports
                    .iter()
                    .map(|p| (id % p.pairs as usize) as u16)
                    .collect(),
                doorbell: Arc::new(Doorbell::default()),
            })
            .collect();
        let mut next = 0;
        for (pi, port) in self.ports.iter().enumerate() {
            for q in 0..port.pairs {
                let w = &mut plans[next % n];
                w.rx.push((pi as u16, q));
                let _ = port.rx[q as usize].doorbell.set(w.doorbell.clone());
                next += 1;
            }
        }
        plans
    }

    /// Starts every port's connection thread.
    pub fn start_ports(&self, m: &Manifest) -> std::io::Result<()> {
        for (spec, port) in m.ports.iter().zip(&self.ports) {
            let PortKind::VhostUser(v) = &spec.kind;
            let mode = match v.mode {
                SocketMode::Server => Mode::Server,
                SocketMode::Client => Mode::Client,
            };
            virtio::port::spawn(port.clone(), v.socket.clone(), mode)
                .map_err(|e| std::io::Error::other(format!("port {}: {e}", spec.name)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(workers: usize, pairs: [u16; 2]) -> Manifest {
        let text = format!(
            "workers: {{ count: {workers} }}\n\
             ports:\n\
             - {{ name: a, type: vhost-user, socket: /tmp/a.sock, queue_pairs: {} }}\n\
             - {{ name: b, type: vhost-user, socket: /tmp/b.sock, queue_pairs: {} }}\n\
             cross_connects: [[a, b]]\n",
            pairs[0], pairs[1]
        );
        Manifest::parse("test.yaml", &text, &|_| None).unwrap()
    }

    #[test]
    fn every_receive_queue_has_exactly_one_worker() {
        for (workers, pairs) in [(1, [1, 1]), (2, [2, 2]), (3, [1, 4]), (4, [2, 1])] {
            let m = manifest(workers, pairs);
            let s = Switch::build(&m).unwrap();
            let plans = s.plan(&m);
            let mut seen: Vec<(u16, u16)> = plans.iter().flat_map(|p| p.rx.clone()).collect();
            seen.sort();
            let want: Vec<(u16, u16)> = (0..2u16)
                .flat_map(|p| (0..pairs[p as usize]).map(move |q| (p, q)))
                .collect();
            assert_eq!(seen, want, "{workers} workers, pairs {pairs:?}");
            for (p, port) in s.ports.iter().enumerate() {
                for q in 0..port.pairs as usize {
                    assert!(port.rx[q].doorbell.get().is_some(), "port {p} queue {q}");
                }
            }
        }
    }

    #[test]
    fn pairs_spread_over_workers_and_tx_queues_shared_when_too_few() {
        let m = manifest(2, [2, 1]);
        let s = Switch::build(&m).unwrap();
        let plans = s.plan(&m);
        // Port a's two pairs land on different workers.
        let owner = |port: u16, q: u16| plans.iter().position(|p| p.rx.contains(&(port, q)));
        assert_ne!(owner(0, 0), owner(0, 1));
        // Each worker transmits on its own pair of port a; port b has one pair, shared.
        assert_eq!(plans[0].tx_pair, vec![0, 0]);
        assert_eq!(plans[1].tx_pair, vec![1, 0]);
        assert_eq!(s.fwd, vec![Fwd::CrossConnect(1), Fwd::CrossConnect(0)]);
    }
}
