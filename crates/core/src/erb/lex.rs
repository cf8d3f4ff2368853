//! Tokenizes the Ruby code inside ERB tags (the supported subset of Ruby's lexical grammar),
//! keeping the source byte span of every token for error messages.

use super::scan::Piece;
use super::{ErbError, ErrorKind, Source};

/// A piece of a string literal: literal text, or `#{...}` code.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum StrPart {
    Lit(String),
    Code(Vec<Token>, usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A local variable, method name or keyword (may end in `?` or `!`).
    Ident(String),
    Const(String),
    Int(i64),
    Float(f64),
    /// `'..'`, `".."`, `%q()`, `%Q()`, `%()`.
    Str(Vec<StrPart>),
    /// `` `..` `` and `%x()`.
    XStr(Vec<StrPart>),
    /// `%w[]`.
    Words(Vec<String>),
    /// `%i[]`.
    Symbols(Vec<String>),
    /// `/re/flags` and `%r{re}flags`: the pattern (escapes kept as written) and its flags.
    Regex(Vec<StrPart>, String),
    Symbol(String),
    /// `name:` in an argument list or hash.
    Label(String),
    Op(&'static str),
    /// A line break that ends a statement (continuation lines are already joined).
    Nl,
    /// `;`, or the boundary between two pieces of the template.
    Semi,
    /// Print the text piece with this index.
    Print(usize),
    InsertOpen,
    InsertClose,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    pub space_before: bool,
}

const OPS3: [&str; 7] = ["**=", "...", "<=>", "===", "||=", "&&=", "<<~"];
const OPS2: [&str; 19] = [
    "==", "!=", "<=", ">=", "&&", "||", "=~", "!~", "::", "..", "&.", "+=", "-=", "*=", "**", "=>",
    "<<", ">>", "->",
];
const OPS1: [&str; 22] = [
    "+", "-", "*", "/", "%", "=", "<", ">", "!", "?", ":", ",", ".", "(", ")", "[", "]", "{", "}",
    "|", "&", "^",
];

pub(super) const KEYWORDS: [&str; 40] = [
    "if",
    "unless",
    "elsif",
    "else",
    "end",
    "then",
    "do",
    "begin",
    "rescue",
    "ensure",
    "while",
    "until",
    "for",
    "in",
    "case",
    "when",
    "nil",
    "true",
    "false",
    "self",
    "and",
    "or",
    "not",
    "next",
    "break",
    "return",
    "redo",
    "retry",
    "yield",
    "def",
    "class",
    "module",
    "defined?",
    "__FILE__",
    "__dir__",
    "__LINE__",
    "super",
    "alias",
    "undef",
    "__method__",
];

fn is_value_end(tok: &Tok) -> bool {
    match tok {
        Tok::Ident(name) => {
            !KEYWORDS.contains(&name.as_str())
                || matches!(
                    name.as_str(),
                    "nil" | "true" | "false" | "self" | "end" | "__dir__"
                )
        }
        Tok::Const(_)
        | Tok::Int(_)
        | Tok::Float(_)
        | Tok::Str(_)
        | Tok::XStr(_)
        | Tok::Words(_)
        | Tok::Symbols(_)
        | Tok::Regex(..)
        | Tok::Symbol(_) => true,
        Tok::Op(op) => matches!(*op, ")" | "]" | "}"),
        _ => false,
    }
}

fn continues_line(tok: &Tok) -> bool {
    match tok {
        Tok::Op(op) => !matches!(*op, ")" | "]" | "}"),
        Tok::Ident(name) => matches!(name.as_str(), "and" | "or" | "not"),
        Tok::Label(_) => true,
        _ => false,
    }
}

pub(super) struct Lexer<'s, 'a> {
    source: &'s Source<'a>,
    chars: Vec<(char, usize)>,
    end_offset: usize,
    i: usize,
    /// `#{...}` nesting, bounded so hostile input cannot exhaust the stack.
    depth: usize,
}

/// The result of lexing one code piece.
pub(super) struct Lexed {
    pub tokens: Vec<Token>,
    /// The code ends inside a `#` comment that is not closed by a line break.
    pub open_comment: Option<usize>,
}

impl<'s, 'a> Lexer<'s, 'a> {
    pub(super) fn new(source: &'s Source<'a>, piece: &Piece) -> Self {
        let mut chars = Vec::with_capacity(piece.text.len());
        for (i, c) in piece.text.char_indices() {
            chars.push((c, piece.offsets[i]));
        }
        let end_offset = piece.offsets.last().map_or(piece.start, |o| o + 1);
        Self {
            source,
            chars,
            end_offset,
            i: 0,
            depth: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|c| c.0)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.end_offset, |c| c.1)
    }

    /// The source offset just after the last consumed character.
    fn end_of_previous(&self) -> usize {
        match self.i.checked_sub(1).and_then(|j| self.chars.get(j)) {
            Some(&(c, at)) => at + c.len_utf8(),
            None => self.offset(),
        }
    }

    fn offset_at(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.end_offset, |c| c.1)
    }

    fn err(&self, start: usize, end: usize, message: String, hint: Option<&str>) -> ErbError {
        self.source.error(
            ErrorKind::Syntax,
            start,
            end,
            message,
            hint.map(str::to_owned),
        )
    }

    fn unsupported(&self, start: usize, end: usize, what: &str) -> ErbError {
        self.source.error(
            ErrorKind::Unsupported,
            start,
            end,
            format!("{what} are not supported in ERB"),
            Some(super::SUPPORTED_HINT.to_owned()),
        )
    }

    /// Lexes the whole piece.
    pub(super) fn lex_all(mut self) -> Result<Lexed, ErbError> {
        let mut tokens = Vec::new();
        let open_comment = self.lex_into(&mut tokens, false)?;
        Ok(Lexed {
            tokens,
            open_comment,
        })
    }

    /// Lexes until the end, or (when `in_interp`) until the `}` closing a `#{`. Returns the offset
    /// of a trailing unterminated comment.
    #[expect(clippy::too_many_lines, reason = "one dispatch over every token start")]
    fn lex_into(
        &mut self,
        out: &mut Vec<Token>,
        in_interp: bool,
    ) -> Result<Option<usize>, ErbError> {
        let mut depth = 0usize;
        let mut space_before = false;
        loop {
            let Some(c) = self.peek(0) else {
                if in_interp {
                    let at = self.offset();
                    return Err(self.err(at, at, "unterminated `#{` interpolation".into(), None));
                }
                return Ok(None);
            };
            let start = self.offset();
            match c {
                ' ' | '\t' | '\r' => {
                    self.i += 1;
                    space_before = true;
                    continue;
                }
                '\\' if self.peek(1) == Some('\n') => {
                    self.i += 2;
                    space_before = true;
                    continue;
                }
                '#' => {
                    while let Some(ch) = self.peek(0) {
                        if ch == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                    if self.peek(0).is_none() {
                        if in_interp {
                            return Err(self.err(
                                start,
                                start,
                                "unterminated `#{` interpolation".into(),
                                None,
                            ));
                        }
                        return Ok(Some(start));
                    }
                    continue;
                }
                '\n' => {
                    self.i += 1;
                    let continued = out.last().is_none_or(|t| continues_line(&t.tok))
                        || self.next_line_starts_with_dot();
                    if !continued && !matches!(out.last(), Some(Token { tok: Tok::Nl, .. })) {
                        out.push(Token {
                            tok: Tok::Nl,
                            start,
                            end: start + 1,
                            space_before,
                        });
                    }
                    space_before = true;
                    continue;
                }
                ';' => {
                    self.i += 1;
                    out.push(Token {
                        tok: Tok::Semi,
                        start,
                        end: start + 1,
                        space_before,
                    });
                    space_before = true;
                    continue;
                }
                _ => {}
            }
            let prev_value = out.last().is_some_and(|t| is_value_end(&t.tok));
            let next_space = self.peek(1).is_none_or(char::is_whitespace);
            let literal_position = !prev_value || (space_before && !next_space);
            let tok = if c.is_ascii_digit() {
                self.number()?
            } else if c == '_' || c.is_alphabetic() {
                self.word()
            } else if c == '@' || c == '$' {
                let end = self.offset_at(self.i + 1);
                return Err(self.unsupported(start, end, "instance and global variables"));
            } else if c == '\'' {
                self.i += 1;
                Tok::Str(vec![StrPart::Lit(self.single_quoted('\'', None)?)])
            } else if c == '"' {
                self.i += 1;
                Tok::Str(self.double_quoted('"', None)?)
            } else if c == '`' {
                self.i += 1;
                Tok::XStr(self.double_quoted('`', None)?)
            } else if c == '%' && literal_position && self.percent_literal_ahead() {
                self.percent_literal()?
            } else if c == ':' && self.peek(1) == Some('"') {
                return Err(self.unsupported(start, start + 2, "quoted symbols"));
            } else if c == ':'
                && literal_position
                && self.peek(1).is_some_and(|n| n == '_' || n.is_alphabetic())
            {
                self.i += 1;
                match self.word() {
                    Tok::Ident(name) | Tok::Const(name) | Tok::Label(name) => Tok::Symbol(name),
                    _ => unreachable!("word() returns names"),
                }
            } else if c == '/' && literal_position {
                self.i += 1;
                let parts = self.regex_body('/', None)?;
                Tok::Regex(parts, self.regex_flags(start)?)
            } else if c == '{' {
                self.i += 1;
                depth += 1;
                Tok::Op("{")
            } else if c == '}' {
                if in_interp && depth == 0 {
                    self.i += 1;
                    return Ok(None);
                }
                self.i += 1;
                depth = depth.saturating_sub(1);
                Tok::Op("}")
            } else {
                self.operator(start)?
            };
            if tok == Tok::Op("<<~") || (tok == Tok::Op("<<") && literal_position) {
                return Err(self.unsupported(start, self.offset(), "heredocs"));
            }
            let end = self.end_of_previous();
            out.push(Token {
                tok,
                start,
                end: end.max(start),
                space_before,
            });
            space_before = false;
        }
    }

    fn next_line_starts_with_dot(&self) -> bool {
        let mut j = self.i;
        while let Some(&(c, _)) = self.chars.get(j) {
            if c == ' ' || c == '\t' || c == '\r' {
                j += 1;
            } else {
                break;
            }
        }
        match (
            self.chars.get(j).map(|c| c.0),
            self.chars.get(j + 1).map(|c| c.0),
        ) {
            (Some('.'), next) => next != Some('.'),
            (Some('&'), Some('.')) => true,
            _ => false,
        }
    }

    fn operator(&mut self, start: usize) -> Result<Tok, ErbError> {
        let rest: String = self.chars[self.i..].iter().take(3).map(|c| c.0).collect();
        for op in OPS3 {
            if rest.starts_with(op) {
                self.i += 3;
                return Ok(Tok::Op(op));
            }
        }
        for op in OPS2 {
            if rest.starts_with(op) {
                self.i += 2;
                return Ok(Tok::Op(op));
            }
        }
        for op in OPS1 {
            if rest.starts_with(op) {
                self.i += 1;
                return Ok(Tok::Op(op));
            }
        }
        let c = self.peek(0).unwrap_or(' ');
        let end = self.offset_at(self.i + 1);
        Err(self.err(
            start,
            end,
            format!("unexpected character `{c}` in Ruby code"),
            None,
        ))
    }

    fn number(&mut self) -> Result<Tok, ErbError> {
        let start = self.offset();
        let mut text = String::new();
        let mut is_float = false;
        while let Some(c) = self.peek(0) {
            if c.is_ascii_digit() {
                text.push(c);
            } else if c == '_' && self.peek(1).is_some_and(|n| n.is_ascii_digit()) {
            } else if c == '.' && !is_float && self.peek(1).is_some_and(|n| n.is_ascii_digit()) {
                is_float = true;
                text.push(c);
            } else if (c == 'e' || c == 'E')
                && (self.peek(1).is_some_and(|n| n.is_ascii_digit())
                    || (matches!(self.peek(1), Some('+' | '-'))
                        && self.peek(2).is_some_and(|n| n.is_ascii_digit())))
            {
                is_float = true;
                text.push(c);
                if let Some(sign @ ('+' | '-')) = self.peek(1) {
                    text.push(sign);
                    self.i += 1;
                }
            } else if c.is_alphanumeric() {
                let end = self.offset_at(self.i + 1);
                return Err(self.unsupported(start, end, "number literals in this notation"));
            } else {
                break;
            }
            self.i += 1;
        }
        let end = self.offset();
        if is_float {
            text.parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| self.err(start, end, format!("invalid number `{text}`"), None))
        } else {
            text.parse::<i64>()
                .map(Tok::Int)
                .map_err(|_| self.unsupported(start, end, "integers this large"))
        }
    }

    fn word(&mut self) -> Tok {
        let mut name = String::new();
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_alphanumeric() {
                name.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        if matches!(self.peek(0), Some('?' | '!'))
            && self.peek(1) != Some('=')
            && !name.starts_with(|c: char| c.is_uppercase())
        {
            // `empty?`, `aws!`; but `a ? b : c` keeps its space before `?`.
            name.push(self.peek(0).unwrap_or('?'));
            self.i += 1;
        } else if name == "defined" && self.peek(0) == Some('?') {
            name.push('?');
            self.i += 1;
        }
        if self.peek(0) == Some(':') && self.peek(1) != Some(':') && !name.ends_with('?') {
            self.i += 1;
            return Tok::Label(name);
        }
        if name.starts_with(|c: char| c.is_uppercase()) {
            Tok::Const(name)
        } else {
            Tok::Ident(name)
        }
    }

    /// Reads a single-quoted string body up to `close` (the opening quote is consumed). With
    /// `open`, nested pairs are balanced (`%q(a(b))`).
    fn single_quoted(&mut self, close: char, open: Option<char>) -> Result<String, ErbError> {
        let start = self.offset();
        let mut out = String::new();
        let mut depth = 0usize;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.err(start, start, "unterminated string literal".into(), None));
            };
            self.i += 1;
            if c == '\\' {
                match self.peek(0) {
                    Some(n) if n == '\\' || n == close || Some(n) == open => {
                        out.push(n);
                        self.i += 1;
                    }
                    _ => out.push('\\'),
                }
            } else if Some(c) == open {
                depth += 1;
                out.push(c);
            } else if c == close {
                if depth == 0 {
                    return Ok(out);
                }
                depth -= 1;
                out.push(c);
            } else {
                out.push(c);
            }
        }
    }

    /// Reads a double-quoted (interpolating) body up to `close`.
    fn double_quoted(&mut self, close: char, open: Option<char>) -> Result<Vec<StrPart>, ErbError> {
        let start = self.offset();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut depth = 0usize;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.err(start, start, "unterminated string literal".into(), None));
            };
            let at = self.offset();
            self.i += 1;
            if c == '\\' {
                let Some(n) = self.peek(0) else { continue };
                self.i += 1;
                match n {
                    'n' => lit.push('\n'),
                    't' => lit.push('\t'),
                    'r' => lit.push('\r'),
                    'e' => lit.push('\u{1b}'),
                    's' => lit.push(' '),
                    '0' => lit.push('\0'),
                    'a' => lit.push('\u{7}'),
                    'b' => lit.push('\u{8}'),
                    'f' => lit.push('\u{c}'),
                    'v' => lit.push('\u{b}'),
                    '\n' => {}
                    'u' => lit.push(self.unicode_escape(at)?),
                    'x' | '1'..='7' => {
                        // `\xHH` (one or two hex digits) and `\NNN` (octal) below 0x80.
                        let (radix, max) = if n == 'x' { (16, 2) } else { (8, 3) };
                        let mut digits = if n == 'x' {
                            String::new()
                        } else {
                            n.to_string()
                        };
                        while digits.len() < max
                            && let Some(d) = self.peek(0).filter(|d| d.is_digit(radix))
                        {
                            digits.push(d);
                            self.i += 1;
                        }
                        match u32::from_str_radix(&digits, radix)
                            .ok()
                            .filter(|v| *v < 0x80)
                        {
                            Some(v) => lit.push(char::from_u32(v).unwrap_or('\0')),
                            None => {
                                return Err(self.unsupported(
                                    at,
                                    self.offset(),
                                    "byte escapes above 0x7F (they make invalid UTF-8)",
                                ));
                            }
                        }
                    }
                    'c' | 'C' | 'M' => {
                        return Err(self.unsupported(
                            at,
                            self.offset(),
                            "control and meta escapes",
                        ));
                    }
                    other => lit.push(other),
                }
            } else if c == '#' && self.peek(0) == Some('{') {
                self.i += 1;
                if !lit.is_empty() {
                    parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                }
                let mut tokens = Vec::new();
                if self.depth >= 32 {
                    return Err(self.unsupported(
                        at,
                        at + 2,
                        "interpolations nested 32 levels deep",
                    ));
                }
                self.depth += 1;
                let lexed = self.lex_into(&mut tokens, true);
                self.depth -= 1;
                lexed?;
                parts.push(StrPart::Code(tokens, at, self.offset()));
            } else if c == '#' && matches!(self.peek(0), Some('@' | '$')) {
                return Err(self.unsupported(at, self.offset(), "instance and global variables"));
            } else if Some(c) == open {
                depth += 1;
                lit.push(c);
            } else if c == close {
                if depth == 0 {
                    if !lit.is_empty() || parts.is_empty() {
                        parts.push(StrPart::Lit(lit));
                    }
                    return Ok(parts);
                }
                depth -= 1;
                lit.push(c);
            } else {
                lit.push(c);
            }
        }
    }

    /// A regular expression body up to `close`: escapes stay as written (the pattern compiler
    /// reads them), except an escaped delimiter; `#{...}` interpolates.
    fn regex_body(&mut self, close: char, open: Option<char>) -> Result<Vec<StrPart>, ErbError> {
        let start = self.offset();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut depth = 0usize;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.err(start, start, "unterminated regular expression".into(), None));
            };
            let at = self.offset();
            self.i += 1;
            if c == '\\' {
                match self.peek(0) {
                    Some(n) if n == close || Some(n) == open => {
                        if n == '/' {
                            lit.push(n);
                        } else {
                            lit.push('\\');
                            lit.push(n);
                        }
                        self.i += 1;
                    }
                    Some(n) => {
                        lit.push('\\');
                        lit.push(n);
                        self.i += 1;
                    }
                    None => lit.push('\\'),
                }
            } else if c == '#' && self.peek(0) == Some('{') {
                self.i += 1;
                if !lit.is_empty() {
                    parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                }
                let mut tokens = Vec::new();
                if self.depth >= 32 {
                    return Err(self.unsupported(
                        at,
                        at + 2,
                        "interpolations nested 32 levels deep",
                    ));
                }
                self.depth += 1;
                let lexed = self.lex_into(&mut tokens, true);
                self.depth -= 1;
                lexed?;
                parts.push(StrPart::Code(tokens, at, self.offset()));
            } else if Some(c) == open {
                depth += 1;
                lit.push(c);
            } else if c == close {
                if depth == 0 {
                    if !lit.is_empty() || parts.is_empty() {
                        parts.push(StrPart::Lit(lit));
                    }
                    return Ok(parts);
                }
                depth -= 1;
                lit.push(c);
            } else {
                lit.push(c);
            }
        }
    }

    /// Regular expression flags after the closing delimiter.
    fn regex_flags(&mut self, start: usize) -> Result<String, ErbError> {
        let mut flags = String::new();
        while let Some(c) = self.peek(0).filter(char::is_ascii_alphabetic) {
            self.i += 1;
            match c {
                'i' | 'm' | 'x' => flags.push(c),
                'o' => {}
                _ => {
                    return Err(self.unsupported(
                        start,
                        self.offset(),
                        &format!("the regular expression flag `{c}` and its kind"),
                    ));
                }
            }
        }
        Ok(flags)
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, ErbError> {
        let mut hex = String::new();
        if self.peek(0) == Some('{') {
            self.i += 1;
            while let Some(c) = self.peek(0) {
                self.i += 1;
                if c == '}' {
                    break;
                }
                hex.push(c);
            }
        } else {
            for _ in 0..4 {
                if let Some(c) = self.peek(0) {
                    hex.push(c);
                    self.i += 1;
                }
            }
        }
        u32::from_str_radix(hex.trim(), 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err(at, self.offset(), "invalid `\\u` escape".into(), None))
    }

    fn percent_literal_ahead(&self) -> bool {
        match (self.peek(1), self.peek(2)) {
            (Some('w' | 'W' | 'i' | 'I' | 'x' | 'q' | 'Q' | 'r' | 's'), Some(d)) => {
                !d.is_alphanumeric() && !d.is_whitespace()
            }
            (Some(d), _) => matches!(d, '(' | '[' | '{' | '<' | '|' | '!' | '/'),
            _ => false,
        }
    }

    fn percent_literal(&mut self) -> Result<Tok, ErbError> {
        let start = self.offset();
        self.i += 1;
        let mut kind = 'Q';
        if let Some(c) = self.peek(0)
            && c.is_alphabetic()
        {
            kind = c;
            self.i += 1;
        }
        let delim = self.peek(0).unwrap_or('(');
        self.i += 1;
        let (open, close) = match delim {
            '(' => (Some('('), ')'),
            '[' => (Some('['), ']'),
            '{' => (Some('{'), '}'),
            '<' => (Some('<'), '>'),
            other => (None, other),
        };
        match kind {
            'w' | 'i' => {
                let body = self.single_quoted(close, open)?;
                let words: Vec<String> = body.split_whitespace().map(str::to_owned).collect();
                if body.contains('\\') {
                    return Err(self.unsupported(start, self.offset(), "escapes in `%w[]`"));
                }
                Ok(if kind == 'w' {
                    Tok::Words(words)
                } else {
                    Tok::Symbols(words)
                })
            }
            'q' => Ok(Tok::Str(vec![StrPart::Lit(
                self.single_quoted(close, open)?,
            )])),
            'Q' => Ok(Tok::Str(self.double_quoted(close, open)?)),
            'x' => Ok(Tok::XStr(self.double_quoted(close, open)?)),
            'r' => {
                let parts = self.regex_body(close, open)?;
                Ok(Tok::Regex(parts, self.regex_flags(start)?))
            }
            _ => Err(self.unsupported(start, self.offset(), &format!("`%{kind}` literals"))),
        }
    }
}
