//! A relay between a frontend's vhost-user socket and the protocol handler of
//! vhost-user-backend.
//!
//! QEMU's virtio-net sends SET_VRING_ENABLE while it sets the device up, before
//! SET_FEATURES. The vhost crate refuses that message until the frontend has acked
//! VHOST_USER_F_PROTOCOL_FEATURES with SET_FEATURES, and drops the connection. The relay
//! passes every message through unchanged except those early SET_VRING_ENABLEs: it
//! acknowledges them itself (when asked to) and hands them to the handler right after
//! SET_FEATURES, in the order they came. Control plane only; no frame goes through here.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;

const HDR_LEN: usize = 12;
/// Largest message body accepted (SET_MEM_TABLE with 509 slots is far below this).
const MAX_BODY: usize = 64 * 1024;
/// Most descriptors one message may carry.
const MAX_FDS: usize = 32;

const REQ_SET_FEATURES: u32 = 2;
const REQ_SET_VRING_ENABLE: u32 = 18;
const FLAG_VERSION: u32 = 0x1;
const FLAG_REPLY: u32 = 0x4;
const FLAG_NEED_REPLY: u32 = 0x8;
const F_PROTOCOL_FEATURES: u64 = 1 << 30;

/// Runs the relay on two threads until either side closes.
pub fn spawn(frontend: UnixStream, handler: UnixStream) -> io::Result<Vec<JoinHandle<()>>> {
    let fe_reader = frontend.try_clone()?;
    let be_reader = handler.try_clone()?;
    let up = std::thread::Builder::new()
        .name("vhost-relay-up".into())
        .spawn(move || {
            let r = relay_requests(&fe_reader, &handler);
            if let Err(e) = r {
                log::debug!("vhost-user relay (frontend to handler): {e}");
            }
            close(&fe_reader, &handler);
        })?;
    let down = std::thread::Builder::new()
        .name("vhost-relay-down".into())
        .spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match recv(&be_reader, &mut buf) {
                    Ok((0, _)) | Err(_) => break,
                    Ok((n, fds)) => {
                        if send(&frontend, &buf[..n], &fds).is_err() {
                            break;
                        }
                    }
                }
            }
            close(&be_reader, &frontend);
        })?;
    Ok(vec![up, down])
}

fn close(a: &UnixStream, b: &UnixStream) {
    let _ = a.shutdown(std::net::Shutdown::Both);
    let _ = b.shutdown(std::net::Shutdown::Both);
}

/// One message from the frontend: header, body and the descriptors that came with it.
struct Message {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Message {
    fn field(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.bytes[4 * i..4 * i + 4].try_into().unwrap())
    }
    fn request(&self) -> u32 {
        self.field(0)
    }
    fn flags(&self) -> u32 {
        self.field(1)
    }
    fn body(&self) -> &[u8] {
        &self.bytes[HDR_LEN..]
    }
}

fn relay_requests(fe: &UnixStream, be: &UnixStream) -> io::Result<()> {
    let mut features_set = false;
    let mut held: Vec<Message> = Vec::new();
    while let Some(mut msg) = read_message(fe)? {
        match msg.request() {
            REQ_SET_VRING_ENABLE if !features_set => {
                if msg.flags() & FLAG_NEED_REPLY != 0 {
                    let mut reply = Vec::with_capacity(HDR_LEN + 8);
                    reply.extend_from_slice(&REQ_SET_VRING_ENABLE.to_le_bytes());
                    reply.extend_from_slice(&(FLAG_VERSION | FLAG_REPLY).to_le_bytes());
                    reply.extend_from_slice(&8u32.to_le_bytes());
                    reply.extend_from_slice(&0u64.to_le_bytes());
                    send(fe, &reply, &[])?;
                    // The handler must not answer it again when it is replayed.
                    let flags = msg.flags() & !FLAG_NEED_REPLY;
                    msg.bytes[4..8].copy_from_slice(&flags.to_le_bytes());
                }
                held.push(msg);
            }
            REQ_SET_FEATURES => {
                let acked = msg
                    .body()
                    .get(..8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
                    .unwrap_or(0);
                send(be, &msg.bytes, &msg.fds)?;
                if acked & F_PROTOCOL_FEATURES != 0 {
                    features_set = true;
                    for m in held.drain(..) {
                        send(be, &m.bytes, &m.fds)?;
                    }
                }
            }
            _ => send(be, &msg.bytes, &msg.fds)?,
        }
    }
    Ok(())
}

/// Reads one whole message; `None` when the frontend closed the connection.
fn read_message(s: &UnixStream) -> io::Result<Option<Message>> {
    let mut bytes = vec![0u8; HDR_LEN];
    let mut fds = Vec::new();
    if !read_exact(s, &mut bytes, &mut fds)? {
        return Ok(None);
    }
    let size = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    if size > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message body of {size} bytes"),
        ));
    }
    bytes.resize(HDR_LEN + size, 0);
    if !read_exact(s, &mut bytes[HDR_LEN..], &mut fds)? {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(Message { bytes, fds }))
}

/// Fills `buf`, collecting any descriptors; false if the peer closed before the first byte.
fn read_exact(s: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let (n, more) = recv(s, &mut buf[got..])?;
        fds.extend(more);
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    Ok(true)
}

const CMSG_BUF: usize = 256;

fn recv(s: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut cmsg = [0u64; CMSG_BUF / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF;
    let n = loop {
        // SAFETY: `msg` describes valid buffers of the stated sizes.
        let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel just wrote, with the libc macros
    // that keep within msg_controllen; each SCM_RIGHTS entry is a descriptor now ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count =
                    ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors",
        ));
    }
    Ok((n, fds))
}

fn send(s: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors",
        ));
    }
    let mut sent = 0;
    let mut first = true;
    while sent < bytes.len() {
        let mut cmsg = [0u64; CMSG_BUF / 8];
        let mut iov = libc::iovec {
            iov_base: bytes[sent..].as_ptr() as *mut libc::c_void,
            iov_len: bytes.len() - sent,
        };
        // SAFETY: as in `recv`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // Descriptors travel with the first byte of the message, as they arrived.
        if first && !fds.is_empty() {
            let len = fds.len() * size_of::<RawFd>();
            // SAFETY: CMSG_SPACE(len) <= CMSG_BUF for MAX_FDS descriptors; the header and
            // data are written inside `cmsg`.
            unsafe {
                msg.msg_control = cmsg.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(len as u32) as usize;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for (i, fd) in fds.iter().enumerate() {
                    data.add(i).write_unaligned(fd.as_raw_fd());
                }
            }
        }
        // SAFETY: `msg` describes valid buffers; MSG_NOSIGNAL turns a closed peer into EPIPE.
        let n = unsafe { libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
        first = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn message(req: u32, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&req.to_le_bytes());
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&(body.len() as u32).to_le_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn early_vring_enable_is_acked_and_replayed_after_set_features() {
        let (qemu, fe) = UnixStream::pair().unwrap();
        let (be, mut handler) = UnixStream::pair().unwrap();
        let threads = spawn(fe, be).unwrap();
        let enable = |i: u32| {
            let mut b = i.to_le_bytes().to_vec();
            b.extend_from_slice(&1u32.to_le_bytes());
            b
        };
        // GET_FEATURES (1) passes; SET_VRING_ENABLE (need reply) is held and acked here.
        send(&qemu, &message(1, FLAG_VERSION, &[]), &[]).unwrap();
        send(
            &qemu,
            &message(18, FLAG_VERSION | FLAG_NEED_REPLY, &enable(0)),
            &[],
        )
        .unwrap();
        let mut reply = [0u8; 20];
        (&qemu).read_exact(&mut reply).unwrap();
        assert_eq!(u32::from_le_bytes(reply[0..4].try_into().unwrap()), 18);
        assert_eq!(
            u32::from_le_bytes(reply[4..8].try_into().unwrap()),
            FLAG_VERSION | FLAG_REPLY
        );
        assert_eq!(u64::from_le_bytes(reply[12..20].try_into().unwrap()), 0);
        let mut got = [0u8; 12];
        handler.read_exact(&mut got).unwrap();
        assert_eq!(got.to_vec(), message(1, FLAG_VERSION, &[]));
        // SET_FEATURES with PROTOCOL_FEATURES releases the held message, without NEED_REPLY,
        // and a descriptor sent along with a message arrives with it.
        let (fd_a, _fd_b) = UnixStream::pair().unwrap();
        let fd: OwnedFd = fd_a.into();
        let features = message(2, FLAG_VERSION, &F_PROTOCOL_FEATURES.to_le_bytes());
        send(&qemu, &features, std::slice::from_ref(&fd)).unwrap();
        let mut buf = vec![0u8; features.len()];
        let (n, fds) = recv(&handler, &mut buf).unwrap();
        assert_eq!(&buf[..n], &features[..n]);
        assert_eq!(fds.len(), 1, "the descriptor travels with its message");
        let mut rest = vec![0u8; 20];
        handler.read_exact(&mut rest).unwrap();
        assert_eq!(rest, message(18, FLAG_VERSION, &enable(0)));
        drop(qemu);
        let mut tail = Vec::new();
        handler.read_to_end(&mut tail).unwrap();
        assert!(
            tail.is_empty(),
            "the relay closes the handler's side when the frontend goes"
        );
        for t in threads {
            t.join().unwrap();
        }
    }
}
