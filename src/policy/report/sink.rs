//! Where renderers write: text goes out in chunks as it is produced, so a report with a
//! hundred thousand findings never exists whole in memory (the rendered JSON of such a
//! report is larger than the manifests it describes).

use std::fmt;
use std::io;

use serde::{Serialize, Serializer};

/// Bytes gathered before they are handed to the writer.
const CHUNK: usize = 64 * 1024;

/// A `fmt::Write` over an `io::Write`. The first I/O error is kept and every later write
/// is dropped; [`Sink::finish`] returns it.
pub(crate) struct Sink<'w> {
    buf: String,
    out: &'w mut dyn io::Write,
    error: Option<io::Error>,
}

impl<'w> Sink<'w> {
    pub(crate) fn new(out: &'w mut dyn io::Write) -> Self {
        Self {
            buf: String::with_capacity(CHUNK + 1024),
            out,
            error: None,
        }
    }

    pub(crate) fn push_str(&mut self, text: &str) {
        self.buf.push_str(text);
        if self.buf.len() >= CHUNK {
            self.drain();
        }
    }

    pub(crate) fn push(&mut self, c: char) {
        self.buf.push(c);
    }

    fn drain(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(self.buf.as_bytes())
        {
            self.error = Some(e);
        }
        self.buf.clear();
    }

    /// Writes what is left and flushes the writer.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.drain();
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

impl fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Serializes what `make` yields as an array, one item at a time: the items (findings as
/// report structs or SARIF results) are built as they are written, never all at once.
pub(crate) struct Streamed<F>(pub F);

impl<F, I> Serialize for Streamed<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// `value` as pretty JSON and a final newline, written in chunks.
pub(crate) fn write_pretty(writer: &mut dyn io::Write, value: &impl Serialize) -> io::Result<()> {
    let mut buffered = io::BufWriter::with_capacity(CHUNK, writer);
    serde_json::to_writer_pretty(&mut buffered, value).map_err(io::Error::other)?;
    io::Write::write_all(&mut buffered, b"\n")?;
    io::Write::flush(&mut buffered)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn writes_everything_in_order_across_chunks() {
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out);
        for i in 0..20_000 {
            let _ = writeln!(sink, "line {i}");
        }
        sink.push('!');
        sink.finish().expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("line 0\nline 1\n"));
        assert!(text.ends_with("line 19999\n!"));
        assert_eq!(
            text.lines().count(),
            20_001,
            "20,000 lines and the final \"!\""
        );
    }

    struct Broken;
    impl io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_first_write_error_is_returned() {
        let mut broken = Broken;
        let mut sink = Sink::new(&mut broken);
        sink.push_str(&"x".repeat(CHUNK * 2));
        sink.push_str("more");
        let err = sink.finish().expect_err("the pipe is closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
