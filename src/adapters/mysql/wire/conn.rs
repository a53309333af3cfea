//! One connection: packets in and out of a reusable buffer, `COM_QUERY`, and a text
//! result's rows as spans of that buffer.
//!
//! Every socket read and write is bounded by the connection's I/O timeout, so a stream of
//! rows fails only when it stops moving, however long it runs; callers bound whole
//! statements and the connect themselves. A call that fails with anything but
//! [`WireError::Server`] or is abandoned mid-way leaves the connection unusable, and the
//! caller drops it (which closes the socket, and the server ends the session).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::time::timeout;

use super::frame::{self, FrameError, MAX_PAYLOAD, MORE_RESULTS, Reply};
use super::{WireError, WireTarget, handshake};

/// The socket, plain or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Bytes asked of the socket at a time, and the buffer's resting size.
const READ_BUFFER: usize = 256 << 10;
/// A packet split over several frames is refused beyond this: MySQL's own ceiling for
/// `max_allowed_packet`, so no row the server can send is refused.
const MAX_MESSAGE: usize = 1 << 30;

/// Until the caller sets its own: long enough for any handshake.
const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
/// The first byte of a `LOCAL INFILE` request, which this client never invites.
const LOCAL_INFILE: u8 = 0xfb;

/// Where a packet's payload is.
enum Payload {
    /// In the read buffer, at this range.
    Buffer(usize, usize),
    /// Reassembled from several frames in `large`.
    Large,
}

/// Whether a result is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Rows {
        columns: usize,
    },
    /// A result ended and the server announced another.
    MoreResults,
}

/// A connection speaking the text protocol.
pub struct WireConn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    large: Vec<u8>,
    /// The sequence number the next packet must carry, in or out.
    seq: u8,
    deprecate_eof: bool,
    state: State,
    fields: Vec<Option<(usize, usize)>>,
    io_timeout: Duration,
}

/// One row of a text result: each field's bytes, `None` for SQL NULL. It borrows the
/// connection's buffer, so it lives until the next call.
pub struct Row<'a> {
    payload: &'a [u8],
    /// Spans checked by [`frame::row_fields`] to lie inside `payload`.
    fields: &'a [Option<(usize, usize)>],
}

impl<'a> Row<'a> {
    pub fn fields(&self) -> impl Iterator<Item = Option<&'a [u8]>> + '_ {
        let payload = self.payload;
        self.fields
            .iter()
            .map(move |span| span.map(|(start, end)| &payload[start..end]))
    }
}

impl WireConn {
    /// Connects and logs in (the caller bounds it).
    pub async fn connect(target: &WireTarget<'_>) -> Result<Self, WireError> {
        handshake::connect(target).await
    }

    pub(super) fn new(stream: Box<dyn Stream>) -> Self {
        Self::resume(stream, 0, DEFAULT_IO_TIMEOUT)
    }

    /// A connection continuing on `stream` (after TLS was set up under it).
    pub(super) fn resume(stream: Box<dyn Stream>, seq: u8, io_timeout: Duration) -> Self {
        Self {
            stream,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            large: Vec::new(),
            seq,
            deprecate_eof: false,
            state: State::Idle,
            fields: Vec::new(),
            io_timeout,
        }
    }

    /// How long one read or write may wait for the socket.
    pub fn set_io_timeout(&mut self, bound: Duration) {
        self.io_timeout = bound;
    }

    pub(super) fn set_deprecate_eof(&mut self, on: bool) {
        self.deprecate_eof = on;
    }

    /// The socket and the next sequence number, to put TLS under the connection. Nothing
    /// may be buffered: the server sends nothing between the TLS request and the TLS
    /// handshake.
    pub(super) fn into_parts(self) -> Result<(Box<dyn Stream>, u8, Duration), WireError> {
        if self.start != self.end {
            return Err(WireError::Handshake(
                "the server sent data before the TLS handshake".to_owned(),
            ));
        }
        Ok((self.stream, self.seq, self.io_timeout))
    }

    /// Runs `sql`, reading and discarding whatever result it has.
    pub async fn exec(&mut self, sql: &str) -> Result<(), WireError> {
        self.query_start(sql).await?;
        self.drain().await
    }

    /// Runs `sql`, which must return rows, and returns its column count; read the rows
    /// with [`Self::next_row`].
    pub async fn query(&mut self, sql: &str) -> Result<usize, WireError> {
        match self.query_start(sql).await? {
            Some(columns) => Ok(columns),
            None => Err(FrameError {
                what: "result",
                problem: "the statement returned no rows".to_owned(),
            }
            .into()),
        }
    }

    /// The next row of the current result, or `None` at its end.
    pub async fn next_row(&mut self) -> Result<Option<Row<'_>>, WireError> {
        let State::Rows { columns } = self.state else {
            return Ok(None);
        };
        let at = self.read_payload().await?;
        let payload = match at {
            Payload::Buffer(start, end) => &self.buf[start..end],
            Payload::Large => &self.large[..],
        };
        match frame::row_end(payload)? {
            Reply::Other => {
                frame::row_fields(payload, columns, &mut self.fields)?;
                Ok(Some(Row {
                    payload,
                    fields: &self.fields,
                }))
            }
            Reply::Done { status } => {
                self.state = if status & MORE_RESULTS == 0 {
                    State::Idle
                } else {
                    State::MoreResults
                };
                Ok(None)
            }
            Reply::Error(error) => {
                self.state = State::Idle;
                Err(WireError::Server(error))
            }
        }
    }

    /// Says goodbye; the caller bounds it.
    pub async fn quit(mut self) {
        self.seq = 0;
        if self.write_packet(&[COM_QUIT]).await.is_ok() {
            let _ = self.stream.shutdown().await;
        }
    }

    /// Sends `sql` and reads up to its first result's rows; `None` when it has none.
    async fn query_start(&mut self, sql: &str) -> Result<Option<usize>, WireError> {
        // A result abandoned by the caller is read to its end first.
        self.drain().await?;
        let mut packet = Vec::with_capacity(sql.len() + 1);
        packet.push(COM_QUERY);
        packet.extend_from_slice(sql.as_bytes());
        self.seq = 0;
        self.write_packet(&packet).await?;
        self.result_start().await
    }

    /// Reads a result's header: OK (another may follow), ERR, or a result set's column
    /// count and definitions.
    async fn result_start(&mut self) -> Result<Option<usize>, WireError> {
        loop {
            let at = self.read_payload().await?;
            let payload = self.payload(&at);
            match frame::reply(payload)? {
                Reply::Done { status } if status & MORE_RESULTS != 0 => {}
                Reply::Done { .. } => return Ok(None),
                Reply::Error(error) => return Err(WireError::Server(error)),
                Reply::Other if payload.first() == Some(&LOCAL_INFILE) => {
                    return Err(FrameError {
                        what: "result",
                        problem: "the server asked for a local file".to_owned(),
                    }
                    .into());
                }
                Reply::Other => {
                    let columns = frame::column_count(payload)?;
                    // The column definitions: the caller knows its columns.
                    for _ in 0..columns {
                        self.read_payload().await?;
                    }
                    if !self.deprecate_eof {
                        self.read_payload().await?;
                    }
                    self.state = State::Rows { columns };
                    return Ok(Some(columns));
                }
            }
        }
    }

    /// Reads the rest of the current result, and of any that follow.
    async fn drain(&mut self) -> Result<(), WireError> {
        loop {
            match self.state {
                State::Idle => return Ok(()),
                State::Rows { .. } => while self.next_row().await?.is_some() {},
                State::MoreResults => {
                    self.state = State::Idle;
                    self.result_start().await?;
                }
            }
        }
    }

    fn payload(&self, at: &Payload) -> &[u8] {
        match *at {
            Payload::Buffer(start, end) => &self.buf[start..end],
            Payload::Large => &self.large,
        }
    }

    /// Reads one packet (the frames of a split one put together).
    pub(super) async fn read_packet(&mut self) -> Result<Vec<u8>, WireError> {
        let at = self.read_payload().await?;
        Ok(self.payload(&at).to_vec())
    }

    async fn read_payload(&mut self) -> Result<Payload, WireError> {
        let mut length = self.frame_header().await?;
        if length < MAX_PAYLOAD {
            self.fill(length).await?;
            let start = self.start;
            self.start += length;
            return Ok(Payload::Buffer(start, start + length));
        }
        self.large.clear();
        loop {
            if self.large.len() + length > MAX_MESSAGE {
                return Err(FrameError {
                    what: "split",
                    problem: format!("a packet over {MAX_MESSAGE} bytes"),
                }
                .into());
            }
            self.fill(length).await?;
            self.large
                .extend_from_slice(&self.buf[self.start..self.start + length]);
            self.start += length;
            if length < MAX_PAYLOAD {
                return Ok(Payload::Large);
            }
            length = self.frame_header().await?;
        }
    }

    /// A frame's header: its payload length, with its sequence number checked.
    async fn frame_header(&mut self) -> Result<usize, WireError> {
        self.fill(4).await?;
        let header = &self.buf[self.start..self.start + 4];
        let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let seq = header[3];
        self.start += 4;
        if seq != self.seq {
            return Err(FrameError {
                what: "frame",
                problem: format!("sequence {seq} where {} was due", self.seq),
            }
            .into());
        }
        self.seq = seq.wrapping_add(1);
        Ok(length)
    }

    /// Makes at least `need` unread bytes available in the buffer.
    async fn fill(&mut self, need: usize) -> Result<(), WireError> {
        if self.end - self.start >= need {
            return Ok(());
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Back to the resting size after a large packet.
            if self.buf.len() > 4 * READ_BUFFER && need <= READ_BUFFER {
                self.buf.truncate(READ_BUFFER);
                self.buf.shrink_to_fit();
            }
        }
        // Keep room for a large read: move the unread bytes to the front when the tail is
        // short, and grow for a packet bigger than the buffer.
        if self.buf.len() - self.start < need || self.buf.len() - self.end < READ_BUFFER / 8 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need.max(READ_BUFFER), 0);
            }
        }
        while self.end - self.start < need {
            let read = timeout(self.io_timeout, self.stream.read(&mut self.buf[self.end..]))
                .await
                .map_err(|_| WireError::Stalled(self.io_timeout))??;
            if read == 0 {
                return Err(WireError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            self.end += read;
        }
        Ok(())
    }

    /// Writes one packet, in as many frames as it takes, from the current sequence number.
    pub(super) async fn write_packet(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let mut out = Vec::with_capacity(payload.len() + 4 * (payload.len() / MAX_PAYLOAD + 1));
        let mut rest = payload;
        loop {
            let piece = &rest[..rest.len().min(MAX_PAYLOAD)];
            let length = u32::try_from(piece.len()).unwrap_or(u32::MAX).to_le_bytes();
            out.extend_from_slice(&length[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(piece);
            rest = &rest[piece.len()..];
            // A payload that fills its last frame exactly ends with an empty one.
            if piece.len() < MAX_PAYLOAD {
                break;
            }
        }
        timeout(self.io_timeout, async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| WireError::Stalled(self.io_timeout))??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs a query against a "server" that answers `reply` and then closes, reading
    /// every row it yields; returns how many rows came before the end or the error.
    fn against(reply: Vec<u8>) -> usize {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            server.write_all(&reply).await.unwrap();
            // The client's reads then end; its query still fits in the pipe.
            server.shutdown().await.unwrap();
            let mut conn = WireConn::new(Box::new(client));
            conn.set_io_timeout(Duration::from_secs(5));
            let mut rows = 0;
            if conn.query("SELECT 1").await.is_ok() {
                while let Ok(Some(row)) = conn.next_row().await {
                    assert!(row.fields().count() > 0);
                    rows += 1;
                }
            }
            drop(server);
            rows
        })
    }

    /// `payloads` framed with the sequence numbers a reply to a command carries.
    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, payload) in payloads.iter().enumerate() {
            let length = u32::try_from(payload.len()).unwrap().to_le_bytes();
            out.extend_from_slice(&length[..3]);
            out.push(u8::try_from(seq + 1).unwrap_or(0));
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn a_well_formed_result_reads_back() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            server
                .write_all(&framed(&[
                    vec![0x02],
                    b"\x03def a".to_vec(),
                    b"\x03def b".to_vec(),
                    vec![0x01, b'7', 0xfb],
                    vec![0x00, 0x02, b'h', b'i'],
                    vec![0xfe, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00],
                ]))
                .await
                .unwrap();
            let mut conn = WireConn::new(Box::new(client));
            conn.set_deprecate_eof(true);
            assert_eq!(conn.query("SELECT 1").await.unwrap(), 2);
            let mut rows = Vec::new();
            while let Some(row) = conn.next_row().await.unwrap() {
                rows.push(
                    row.fields()
                        .map(|f| f.map(<[u8]>::to_vec))
                        .collect::<Vec<_>>(),
                );
            }
            assert_eq!(
                rows,
                vec![
                    vec![Some(b"7".to_vec()), None],
                    vec![Some(Vec::new()), Some(b"hi".to_vec())]
                ]
            );
            assert_eq!(conn.state, State::Idle);
        });
    }

    proptest! {
        /// Whatever bytes a server sends, the reader returns (an error or rows) and never
        /// panics or hangs.
        #[test]
        fn arbitrary_server_bytes_never_panic(reply in proptest::collection::vec(any::<u8>(), 0..2048)) {
            against(reply);
        }

        /// Correctly framed packets with arbitrary payloads reach the result and row
        /// parsers; they never panic either.
        #[test]
        fn arbitrary_framed_payloads_never_panic(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..12)) {
            against(framed(&payloads));
        }
    }
}
