//! Request/response buffering: read a whole body, keeping up to a memory limit in RAM and spilling
//! the rest to a temp file (`proxy-buffer-*`), refusing bodies over the maximum size.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, ReadBuf};

use crate::body::{self, Body, BoxError};

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("maximum size exceeded")]
    TooLarge,
    #[error("error reading body: {0}")]
    Read(BoxError),
    #[error("error buffering body: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads `input` completely. `max == 0` means no limit.
pub async fn buffer_body(mut input: Body, memory: usize, max: u64) -> Result<Body, BufferError> {
    if max > 0
        && let Some(exact) = input.size_hint().exact()
        && exact > max
    {
        return Err(BufferError::TooLarge);
    }
    // Nothing to read (most requests): the body is passed on as it is.
    if input.is_end_stream() {
        return Ok(input);
    }
    let mut in_memory = BytesMut::new();
    // The first chunk is kept as it came, and only copied once a second one follows: a body
    // that arrives in one piece (most responses) is passed on without a copy.
    let mut first: Option<Bytes> = None;
    let mut spill: Option<tokio::fs::File> = None;
    let mut total: u64 = 0;
    while let Some(frame) = input.frame().await {
        let frame = frame.map_err(BufferError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if max > 0 && total > max {
            return Err(BufferError::TooLarge);
        }
        if spill.is_none() && total <= memory as u64 {
            if first.is_none() && in_memory.is_empty() {
                first = Some(data);
            } else {
                if let Some(first) = first.take() {
                    in_memory.reserve(first.len() + data.len());
                    in_memory.extend_from_slice(&first);
                }
                in_memory.extend_from_slice(&data);
            }
            continue;
        }
        if let Some(first) = first.take() {
            in_memory.extend_from_slice(&first);
        }
        if spill.is_none() {
            let file = tempfile::Builder::new()
                .prefix("proxy-buffer-")
                .tempfile()?
                .into_file();
            spill = Some(tokio::fs::File::from_std(file));
        }
        if let Some(file) = spill.as_mut() {
            file.write_all(&data).await?;
        }
    }
    let memory_part = match first {
        Some(first) => first,
        None => in_memory.freeze(),
    };
    match spill {
        None => Ok(body::full(memory_part)),
        Some(mut file) => {
            file.flush().await?;
            file.seek(std::io::SeekFrom::Start(0)).await?;
            Ok(body::boxed(SpooledBody {
                memory: Some(memory_part),
                file,
                remaining: total,
                buf: vec![0; 64 * 1024],
            }))
        }
    }
}

/// Memory part first, then the spilled file (already unlinked, so it disappears when dropped).
struct SpooledBody {
    memory: Option<Bytes>,
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl HttpBody for SpooledBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Some(memory) = this.memory.take() {
            this.remaining -= memory.len() as u64;
            if !memory.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(memory))));
            }
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut read_buf = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let filled = read_buf.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "spilled buffer truncated",
                    ))));
                }
                this.remaining = this.remaining.saturating_sub(filled.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.memory.is_none() && self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Chunks(VecDeque<Bytes>);
    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    async fn roundtrip(data: &[u8], memory: usize, max: u64) -> Result<Vec<u8>, BufferError> {
        let chunks = data.chunks(3).map(Bytes::copy_from_slice).collect();
        let out = buffer_body(body::boxed(Chunks(chunks)), memory, max).await?;
        Ok(out.collect().await.unwrap().to_bytes().to_vec())
    }

    #[tokio::test]
    async fn buffer_test_unlimited_spills_and_limits() {
        let data = b"hello world, this is a body";
        assert_eq!(roundtrip(data, 1024, 0).await.unwrap(), data);
        assert_eq!(roundtrip(data, 4, 0).await.unwrap(), data);
        assert_eq!(roundtrip(data, 4, 100).await.unwrap(), data);
        assert!(matches!(
            roundtrip(data, 4, 10).await,
            Err(BufferError::TooLarge)
        ));
        assert!(matches!(
            roundtrip(data, 1024, 10).await,
            Err(BufferError::TooLarge)
        ));
        assert_eq!(roundtrip(b"", 4, 10).await.unwrap(), b"");
        // One chunk, two, and a first chunk that fits followed by one that spills.
        assert_eq!(roundtrip(b"abc", 3, 0).await.unwrap(), b"abc");
        assert_eq!(roundtrip(b"abcdef", 6, 0).await.unwrap(), b"abcdef");
        assert_eq!(roundtrip(b"abcdefg", 6, 0).await.unwrap(), b"abcdefg");
        assert_eq!(
            roundtrip(b"abcdefghijk", 3, 0).await.unwrap(),
            b"abcdefghijk"
        );
    }

    #[tokio::test]
    async fn a_body_in_one_chunk_is_passed_on_without_a_copy_and_an_ended_one_as_it_is() {
        let data = Bytes::from(vec![7u8; 1000]);
        let input = body::boxed(Chunks(VecDeque::from([data.clone()])));
        let out = buffer_body(input, 4096, 0).await.unwrap();
        assert_eq!(out.size_hint().exact(), Some(1000));
        let bytes = out.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, data);
        assert_eq!(bytes.as_ptr(), data.as_ptr());

        let ended = buffer_body(body::empty(), 4096, 10).await.unwrap();
        assert!(ended.is_end_stream());
        assert!(ended.collect().await.unwrap().to_bytes().is_empty());
    }
}
