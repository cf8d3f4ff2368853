//! Splits an ERB template into text, code, expression and comment pieces exactly as Ruby's
//! `ERB::Compiler::ExplicitScanner` does for trim mode `-` (the mode Kamal uses).
//!
//! Rules reproduced byte for byte:
//! * `<%-` is an ordinary `<%` tag; when only spaces and tabs stand between it and the start of
//!   its line (or the end of the previous tag, because Ruby's `StringScanner` anchors `^` at the
//!   scan position), that indentation is dropped as well.
//! * `-%>` closes a tag and swallows one directly following `\n` or `\r\n`.
//! * `<%%` in text is a literal `<%`; `%%>` inside a tag is a literal `%>`; `%%>` and `-%>` in
//!   text are plain text.
//! * `<%# ... %>` is a comment and produces nothing.

use super::{ErbError, ErrorKind, Source};

/// What a piece of the template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PieceKind {
    /// Literal text copied to the output.
    Text,
    /// `<% code %>`.
    Code,
    /// `<%= expression %>`.
    Insert,
    /// `<%# comment %>`; `text` holds the comment (only its newlines matter).
    Comment,
    /// A line break in the generated Ruby program (after `-%>\n`, or a code tag ending in `\n`).
    Cr,
}

/// One piece of the template, with the source offset of every byte of its content.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    pub kind: PieceKind,
    pub text: String,
    /// `offsets[i]` is the source byte offset of `text.as_bytes()[i]`.
    pub offsets: Vec<usize>,
    /// Source offset of the opening tag (tags) or of the first byte (text).
    pub start: usize,
}

impl Piece {
    fn new(kind: PieceKind, start: usize) -> Self {
        Self {
            kind,
            text: String::new(),
            offsets: Vec::new(),
            start,
        }
    }

    fn push_src(&mut self, src: &str, from: usize, to: usize) {
        self.text.push_str(&src[from..to]);
        self.offsets.extend(from..to);
    }
}

#[derive(Clone, Copy)]
enum Stag {
    Code,
    Insert,
    Comment,
}

/// Splits `source` into pieces. Fails only on a tag that is never closed.
#[expect(
    clippy::too_many_lines,
    reason = "one state machine mirroring ExplicitScanner"
)]
pub(super) fn scan(source: &Source<'_>) -> Result<Vec<Piece>, ErbError> {
    let src = source.text;
    let bytes = src.as_bytes();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut pos = 0;
    let mut text = Piece::new(PieceKind::Text, 0);
    while pos < bytes.len() {
        // Text state: find the next start tag. `^` matches at the scan start, at 0 and after `\n`.
        let scan_start = pos;
        let mut p = pos;
        let found = loop {
            if p >= bytes.len() {
                break None;
            }
            if p == scan_start || p == 0 || bytes[p - 1] == b'\n' {
                let mut q = p;
                while q < bytes.len() && (bytes[q] == b' ' || bytes[q] == b'\t') {
                    q += 1;
                }
                if bytes[q..].starts_with(b"<%-") {
                    break Some((p, q + 3, Some(Stag::Code)));
                }
            }
            let rest = &bytes[p..];
            if rest.starts_with(b"<%-") {
                break Some((p, p + 3, Some(Stag::Code)));
            }
            if rest.starts_with(b"<%%") {
                break Some((p, p + 3, None));
            }
            if rest.starts_with(b"<%=") {
                break Some((p, p + 3, Some(Stag::Insert)));
            }
            if rest.starts_with(b"<%#") {
                break Some((p, p + 3, Some(Stag::Comment)));
            }
            if rest.starts_with(b"<%") {
                break Some((p, p + 2, Some(Stag::Code)));
            }
            p += 1;
        };
        let Some((tag_at, after, stag)) = found else {
            if text.text.is_empty() {
                text.start = pos;
            }
            text.push_src(src, pos, bytes.len());
            break;
        };
        if text.text.is_empty() {
            text.start = pos;
        }
        text.push_src(src, pos, tag_at);
        let Some(stag) = stag else {
            // `<%%`: a literal `<%`, text continues.
            text.text.push_str("<%");
            text.offsets.extend([tag_at, tag_at + 1]);
            pos = after;
            continue;
        };
        if !text.text.is_empty() {
            pieces.push(std::mem::replace(
                &mut text,
                Piece::new(PieceKind::Text, after),
            ));
        }
        // Code state: find the end tag.
        let kind = match stag {
            Stag::Code => PieceKind::Code,
            Stag::Insert => PieceKind::Insert,
            Stag::Comment => PieceKind::Comment,
        };
        let tag_start = if bytes[tag_at] == b'<' {
            tag_at
        } else {
            // `^[ \t]*<%-`: the tag itself starts after the indentation.
            after - 3
        };
        let mut content = Piece::new(kind, tag_start);
        let mut p = after;
        let mut chunk = after;
        loop {
            if p >= bytes.len() {
                return Err(source.error(
                    ErrorKind::Syntax,
                    tag_start,
                    after,
                    "this ERB tag is never closed with `%>`".to_owned(),
                    Some(
                        "Ruby's ERB would print the rest of the file as text here; close the tag \
                         with `%>`"
                            .to_owned(),
                    ),
                ));
            }
            let rest = &bytes[p..];
            if rest.starts_with(b"-%>") {
                content.push_src(src, chunk, p);
                pos = p + 3;
                let cr = if bytes[pos..].starts_with(b"\r\n") {
                    pos += 2;
                    true
                } else if bytes[pos..].starts_with(b"\n") {
                    pos += 1;
                    true
                } else {
                    pos == bytes.len()
                };
                close_tag(&mut pieces, content);
                if cr {
                    pieces.push(Piece::new(PieceKind::Cr, pos));
                }
                break;
            }
            if rest.starts_with(b"%%>") {
                content.push_src(src, chunk, p);
                content.text.push_str("%>");
                content.offsets.extend([p + 1, p + 2]);
                p += 3;
                chunk = p;
                continue;
            }
            if rest.starts_with(b"%>") {
                content.push_src(src, chunk, p);
                pos = p + 2;
                close_tag(&mut pieces, content);
                break;
            }
            p += 1;
        }
    }
    if !text.text.is_empty() {
        pieces.push(text);
    }
    Ok(pieces)
}

/// Ruby's `compile_content`: a code tag whose content ends in `\n` is chopped and followed by a
/// line break in the generated program.
fn close_tag(pieces: &mut Vec<Piece>, mut content: Piece) {
    if content.kind == PieceKind::Code && content.text.ends_with('\n') {
        content.text.pop();
        let end = content.offsets.pop().unwrap_or(content.start);
        pieces.push(content);
        pieces.push(Piece::new(PieceKind::Cr, end));
    } else {
        pieces.push(content);
    }
}
