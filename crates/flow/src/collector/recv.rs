//! Batched UDP receive for the collector: `recvmmsg` takes up to [`BATCH`] datagrams in one
//! system call, through nix (the workspace forbids `unsafe`, and std has no such call; the same
//! pattern as the DNS filter's). The buffers and message headers are allocated once per thread
//! and reused, so a call costs no allocation.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

/// Datagrams per system call at most.
pub(super) const BATCH: usize = 32;

/// Bytes per datagram at most: a UDP payload can't be longer, so nothing is truncated (as with
/// the `recv_from` into 64 KiB this replaces).
const SLOT: usize = 65_535;

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Up to [`BATCH`] received datagrams.
pub(super) struct RecvBatch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    n: usize,
    hdrs: MultiHeaders<SockaddrStorage>,
}

impl RecvBatch {
    /// Room for [`BATCH`] datagrams (2 MiB). Not `Send` (nix's headers hold raw pointers): made on
    /// the collector's thread.
    pub(super) fn new() -> Self {
        RecvBatch {
            bufs: vec![0; SLOT * BATCH],
            lens: [0; BATCH],
            from: [None; BATCH],
            n: 0,
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Takes what is queued on `sock`, up to [`BATCH`] datagrams; with `wait`, first waits for one
    /// (up to the socket's read timeout), otherwise returns at once. Returns how many datagrams
    /// were taken (a `WouldBlock` or `TimedOut` error when none): fewer than [`BATCH`] means the
    /// socket was drained.
    pub(super) fn recv(&mut self, sock: &UdpSocket, wait: bool) -> io::Result<usize> {
        let mut chunks = self.bufs.chunks_exact_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        // MSG_WAITFORONE: block (when `wait`) for the first datagram only, then take what is there.
        let flags = if wait { MsgFlags::MSG_WAITFORONE } else { MsgFlags::MSG_WAITFORONE | MsgFlags::MSG_DONTWAIT };
        let res = recvmmsg(sock.as_raw_fd(), &mut self.hdrs, iovs.iter_mut(), flags, None).map_err(io::Error::from)?;
        let mut n = 0;
        for (m, (len, from)) in res.zip(self.lens.iter_mut().zip(self.from.iter_mut())) {
            *len = m.bytes.min(SLOT);
            *from = m.address.as_ref().and_then(to_std);
            n += 1;
        }
        self.n = n;
        Ok(n)
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`] and its sender (`None` when the kernel
    /// gave no address it could read, which UDP always gives).
    pub(super) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        if i >= self.n {
            return (&[], None);
        }
        let start = i * SLOT;
        (self.bufs.get(start..start + self.lens[i]).unwrap_or_default(), self.from[i])
    }
}
