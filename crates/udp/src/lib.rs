//! Batched UDP I/O for mamori's listeners (the DNS filter, the flow collector): `recvmmsg`
//! receives up to [`BATCH`] datagrams in one system call and `sendmmsg` sends up to as many,
//! through nix (the workspace forbids `unsafe`, and std has neither call). Buffers and message
//! headers are allocated once per thread and reused; a batch costs no allocation. The batches
//! are not `Send` (nix's headers hold raw pointers): each is made on the thread that uses it.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrStorage, bind, recvmmsg, sendmmsg, setsockopt,
    socket, sockopt,
};
use std::io::{IoSlice, IoSliceMut};

/// Datagrams per system call.
pub const BATCH: usize = 32;

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Up to [`BATCH`] received datagrams of at most `size` bytes each.
pub struct RecvBatch {
    bufs: Vec<u8>,
    size: usize,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    n: usize,
    hdrs: MultiHeaders<SockaddrStorage>,
}

impl RecvBatch {
    /// Room for [`BATCH`] datagrams of `size` bytes.
    pub fn new(size: usize) -> Self {
        RecvBatch {
            bufs: vec![0; size * BATCH],
            size,
            lens: [0; BATCH],
            from: [None; BATCH],
            n: 0,
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Waits for at least one datagram (up to the socket's read timeout: an error then) and takes
    /// what else is already queued, up to [`BATCH`]. Returns how many; fewer than [`BATCH`] means
    /// the socket was drained. Truncated datagrams are dropped.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.recv_with(sock, MsgFlags::MSG_WAITFORONE)
    }

    /// [`RecvBatch::recv`] without waiting: what is queued now, or a `WouldBlock` error when
    /// nothing is.
    pub fn try_recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.recv_with(sock, MsgFlags::MSG_WAITFORONE | MsgFlags::MSG_DONTWAIT)
    }

    fn recv_with(&mut self, sock: &UdpSocket, flags: MsgFlags) -> io::Result<usize> {
        let mut chunks = self.bufs.chunks_exact_mut(self.size);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let res = recvmmsg(sock.as_raw_fd(), &mut self.hdrs, iovs.iter_mut(), flags, None).map_err(io::Error::from)?;
        let mut n = 0;
        for m in res {
            if m.flags.contains(MsgFlags::MSG_TRUNC) {
                continue;
            }
            self.lens[n] = m.bytes;
            self.from[n] = m.address.as_ref().and_then(to_std);
            n += 1;
        }
        self.n = n;
        Ok(n)
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`] and its sender (empty and `None` past
    /// the datagrams received).
    pub fn get(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>) {
        if i >= self.n {
            return (&mut [], None);
        }
        let start = i * self.size;
        (self.bufs.get_mut(start..start + self.lens[i]).unwrap_or_default(), self.from[i])
    }
}

/// Datagrams queued for one `sendmmsg`.
pub struct SendBatch {
    bufs: Vec<u8>,
    size: usize,
    lens: [usize; BATCH],
    to: [Option<SockaddrStorage>; BATCH],
    n: usize,
    hdrs: MultiHeaders<SockaddrStorage>,
}

impl SendBatch {
    /// Room for [`BATCH`] datagrams of `size` bytes.
    pub fn new(size: usize) -> Self {
        SendBatch {
            bufs: vec![0; size * BATCH],
            size,
            lens: [0; BATCH],
            to: [None; BATCH],
            n: 0,
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Queues `bytes` for `to` (`None` on a connected socket), sending the batch first if it is
    /// full. Datagrams larger than the slot are dropped.
    pub fn push(&mut self, sock: &UdpSocket, bytes: &[u8], to: Option<SocketAddr>) {
        if bytes.len() > self.size {
            return;
        }
        if self.n == BATCH {
            self.flush(sock);
        }
        let start = self.n * self.size;
        self.bufs[start..start + bytes.len()].copy_from_slice(bytes);
        self.lens[self.n] = bytes.len();
        self.to[self.n] = to.map(SockaddrStorage::from);
        self.n += 1;
    }

    /// A slot to write a datagram of up to `size` bytes into in place; commit it with
    /// [`SendBatch::commit`].
    pub fn slot(&mut self, sock: &UdpSocket) -> &mut [u8] {
        if self.n == BATCH {
            self.flush(sock);
        }
        let start = self.n * self.size;
        &mut self.bufs[start..start + self.size]
    }

    /// Queues the slot's first `len` bytes for `to`.
    pub fn commit(&mut self, len: usize, to: Option<SocketAddr>) {
        self.lens[self.n] = len.min(self.size);
        self.to[self.n] = to.map(SockaddrStorage::from);
        self.n += 1;
    }

    /// Sends what is queued. UDP is best effort: a datagram the kernel refuses is dropped.
    pub fn flush(&mut self, sock: &UdpSocket) {
        let mut start = 0;
        while start < self.n {
            let (n, size) = (self.n, self.size);
            let mut chunks = self.bufs.chunks_exact(size).zip(self.lens).skip(start);
            let iovs: [[IoSlice<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSlice::new(chunks.next().map_or(&[][..], |(c, l)| &c[..l]))]);
            let cmsgs: [nix::sys::socket::ControlMessage<'_>; 0] = [];
            let sent = sendmmsg(
                sock.as_raw_fd(),
                &mut self.hdrs,
                iovs[..n - start].iter(),
                &self.to[start..n],
                cmsgs,
                MsgFlags::empty(),
            )
            .map(Iterator::count);
            // On an error the first datagram is dropped and the rest retried.
            start += sent.unwrap_or(0).max(1);
        }
        self.n = 0;
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// A UDP socket bound to `addr` with `SO_REUSEPORT`, so several workers each get their own socket
/// on the same address and the kernel spreads clients over them.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
}
