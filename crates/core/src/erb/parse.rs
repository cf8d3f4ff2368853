//! Parses the template's token stream (text pieces, `<%= %>` expressions and `<% %>` code, as
//! Ruby's ERB compiles them into one program) into an AST of the supported Ruby subset.

use std::collections::HashSet;

use super::lex::{KEYWORDS, Lexer, StrPart, Tok, Token};
use super::scan::{Piece, PieceKind};
use super::{ErbError, ErrorKind, Source};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub kind: NodeKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Lit(String),
    Code(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Block {
    pub params: Vec<String>,
    pub body: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rescue {
    pub classes: Vec<Node>,
    pub var: Option<String>,
    pub body: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum NodeKind {
    Nil,
    True,
    False,
    SelfRef,
    Dir,
    File,
    Int(i64),
    Float(f64),
    Str(Vec<Part>),
    XStr(Vec<Part>),
    Words(Vec<String>),
    Symbols(Vec<String>),
    Sym(String),
    Regex(Vec<Part>, String),
    Array(Vec<Node>),
    Hash(Vec<(Node, Node)>),
    Var(String),
    Const(Vec<String>),
    Call {
        recv: Option<Box<Node>>,
        name: String,
        args: Vec<Node>,
        block: Option<Box<Block>>,
        safe: bool,
    },
    Index(Box<Node>, Vec<Node>),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Range(Box<Node>, Box<Node>, bool),
    If(Box<Node>, Vec<Node>, Vec<Node>),
    Assign(String, Box<Node>),
    OpAssign(String, &'static str, Box<Node>),
    IndexAssign(Box<Node>, Vec<Node>, Box<Node>),
    Seq(Vec<Node>),
    Begin(Vec<Node>, Vec<Rescue>, Vec<Node>, Vec<Node>),
    RescueMod(Box<Node>, Box<Node>),
    Next(Option<Box<Node>>),
    Break(Option<Box<Node>>),
    Defined(Box<Node>),
    /// Print the template text piece with this index.
    Print(usize),
    /// `<%= ... %>`.
    Insert(Vec<Node>),
}

/// Turns the scanned pieces into one token stream, as ERB joins them into one Ruby program.
pub(super) fn tokenize(source: &Source<'_>, pieces: &[Piece]) -> Result<Vec<Token>, ErbError> {
    let mut out = Vec::new();
    // Offset of a `#` comment that ran to the end of a code tag: Ruby would comment out
    // everything that follows on the same line of the generated program.
    let mut open_comment: Option<usize> = None;
    for (index, piece) in pieces.iter().enumerate() {
        let start = piece.start;
        let end = piece.offsets.last().map_or(start, |o| o + 1);
        if let Some(at) = open_comment {
            let swallows = match piece.kind {
                PieceKind::Cr => false,
                PieceKind::Comment => !piece.text.contains('\n'),
                PieceKind::Text | PieceKind::Code | PieceKind::Insert => true,
            };
            if swallows && !(piece.kind == PieceKind::Comment) {
                return Err(source.error(
                    ErrorKind::Unsupported,
                    at,
                    at + 1,
                    "this `#` comment runs to the end of its `<% %>` tag; Ruby's ERB would \
                     silently drop the template text that follows it on the same line"
                        .to_owned(),
                    Some(
                        "use an ERB comment `<%# ... %>`, or end the comment with a line break \
                         before `%>`"
                            .to_owned(),
                    ),
                ));
            }
            if !swallows {
                open_comment = None;
            }
        }
        match piece.kind {
            PieceKind::Text => {
                out.push(Token {
                    tok: Tok::Print(index),
                    start,
                    end,
                    space_before: true,
                });
            }
            PieceKind::Code => {
                let lexed = Lexer::new(source, piece).lex_all()?;
                out.extend(lexed.tokens);
                open_comment = lexed.open_comment;
            }
            PieceKind::Insert => {
                let lexed = Lexer::new(source, piece).lex_all()?;
                if let Some(at) = lexed.open_comment {
                    return Err(source.error(
                        ErrorKind::Unsupported,
                        at,
                        at + 1,
                        "a `#` comment inside `<%= %>` comments out the rest of the expression"
                            .to_owned(),
                        Some("move the comment into its own `<%# ... %>` tag".to_owned()),
                    ));
                }
                out.push(Token {
                    tok: Tok::InsertOpen,
                    start,
                    end: start + 3,
                    space_before: true,
                });
                out.extend(lexed.tokens);
                out.push(Token {
                    tok: Tok::InsertClose,
                    start: end,
                    end,
                    space_before: true,
                });
            }
            PieceKind::Comment | PieceKind::Cr => continue,
        }
        out.push(Token {
            tok: Tok::Semi,
            start: end,
            end,
            space_before: true,
        });
    }
    let end = source.text.len();
    out.push(Token {
        tok: Tok::Eof,
        start: end,
        end,
        space_before: true,
    });
    Ok(out)
}

pub(super) struct Parser<'s, 'a> {
    source: &'s Source<'a>,
    tokens: Vec<Token>,
    pos: usize,
    scopes: Vec<HashSet<String>>,
    /// A `&:name` argument seen in the argument list being parsed.
    block_pass: Option<Box<Block>>,
    /// Expression nesting, bounded so hostile input cannot exhaust the stack.
    depth: usize,
}

/// The deepest expression nesting accepted.
const MAX_DEPTH: usize = 24;

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) | Tok::Const(s) => format!("`{s}`"),
        Tok::Label(s) => format!("`{s}:`"),
        Tok::Int(i) => format!("`{i}`"),
        Tok::Float(f) => format!("`{f}`"),
        Tok::Str(_) => "a string".into(),
        Tok::XStr(_) => "a command".into(),
        Tok::Words(_) | Tok::Symbols(_) => "a `%w[]` list".into(),
        Tok::Regex(..) => "a regular expression".into(),
        Tok::Symbol(s) => format!("`:{s}`"),
        Tok::Op(op) => format!("`{op}`"),
        Tok::Nl => "a line break".into(),
        Tok::Semi => "the end of the tag".into(),
        Tok::Print(_) => "template text".into(),
        Tok::InsertOpen => "`<%=`".into(),
        Tok::InsertClose => "the end of the `<%= %>` tag".into(),
        Tok::Eof => "the end of the file".into(),
    }
}

const TERMINATOR_KEYWORDS: [&str; 6] = ["end", "else", "elsif", "rescue", "ensure", "when"];

impl<'s, 'a> Parser<'s, 'a> {
    pub(super) fn new(source: &'s Source<'a>, tokens: Vec<Token>) -> Self {
        Self {
            source,
            tokens,
            pos: 0,
            scopes: vec![HashSet::new()],
            block_pass: None,
            depth: 0,
        }
    }

    fn tok(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn token(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn tok_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].tok
    }

    fn advance(&mut self) -> Token {
        let t = self.token().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        self.pos.checked_sub(1).map_or(0, |p| self.tokens[p].end)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.tok(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.tok(), Tok::Ident(o) if o == kw)
    }

    fn skip_nl(&mut self) {
        while matches!(self.tok(), Tok::Nl) {
            self.advance();
        }
    }

    fn skip_terms(&mut self) {
        while matches!(self.tok(), Tok::Nl | Tok::Semi) {
            self.advance();
        }
    }

    fn is_local(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(name))
    }

    fn declare(&mut self, name: &str) {
        if !self.is_local(name)
            && let Some(scope) = self.scopes.last_mut()
        {
            scope.insert(name.to_owned());
        }
    }

    fn unexpected(&self, expected: &str) -> ErbError {
        let t = self.token();
        let found = describe(&t.tok);
        self.source.error(
            ErrorKind::Syntax,
            t.start,
            t.end.max(t.start),
            format!("Ruby syntax error: unexpected {found}, expected {expected}"),
            Some(super::SUPPORTED_HINT.to_owned()),
        )
    }

    fn unsupported_here(&self, start: usize, what: &str) -> ErbError {
        let end = self.token().end.max(start);
        self.source.error(
            ErrorKind::Unsupported,
            start,
            end,
            format!("{what} are not supported in ERB"),
            Some(super::SUPPORTED_HINT.to_owned()),
        )
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ErbError> {
        if self.is_op(op) {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{op}`")))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ErbError> {
        if self.is_kw(kw) {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{kw}`")))
        }
    }

    fn node(&self, kind: NodeKind, start: usize) -> Node {
        Node {
            kind,
            start,
            end: self.prev_end().max(start),
        }
    }

    pub(super) fn parse_program(&mut self) -> Result<Vec<Node>, ErbError> {
        let body = self.parse_stmts()?;
        if !matches!(self.tok(), Tok::Eof) {
            return Err(self.unexpected("a statement"));
        }
        Ok(body)
    }

    /// Statements up to a closing keyword, `}`, `)`, the end of a `<%= %>` or the end.
    fn parse_stmts(&mut self) -> Result<Vec<Node>, ErbError> {
        let mut out = Vec::new();
        loop {
            self.skip_terms();
            match self.tok() {
                Tok::Eof | Tok::InsertClose => break,
                Tok::Op(op) if matches!(*op, "}" | ")") => break,
                Tok::Ident(kw) if TERMINATOR_KEYWORDS.contains(&kw.as_str()) => break,
                _ => {}
            }
            out.push(self.parse_stmt()?);
            if !matches!(
                self.tok(),
                Tok::Nl | Tok::Semi | Tok::Eof | Tok::InsertClose | Tok::Op("}" | ")")
            ) && !matches!(self.tok(), Tok::Ident(kw) if TERMINATOR_KEYWORDS.contains(&kw.as_str()))
            {
                return Err(self.unexpected("the end of the statement"));
            }
        }
        Ok(out)
    }

    fn parse_stmt(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut node = self.parse_expr_stmt()?;
        loop {
            if self.is_kw("if") || self.is_kw("unless") {
                let negate = self.is_kw("unless");
                self.advance();
                let cond = self.parse_expr_stmt()?;
                let cond = if negate {
                    let (s, e) = (cond.start, cond.end);
                    Node {
                        kind: NodeKind::Not(Box::new(cond)),
                        start: s,
                        end: e,
                    }
                } else {
                    cond
                };
                node = self.node(NodeKind::If(Box::new(cond), vec![node], vec![]), start);
            } else if self.is_kw("rescue") {
                self.advance();
                let fallback = self.parse_expr_stmt()?;
                node = self.node(
                    NodeKind::RescueMod(Box::new(node), Box::new(fallback)),
                    start,
                );
            } else if self.is_kw("while") || self.is_kw("until") {
                return Err(self.unsupported_here(start, "loops with `while`/`until`"));
            } else {
                return Ok(node);
            }
        }
    }

    fn parse_expr_stmt(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_not()?;
        while self.is_kw("and") || self.is_kw("or") {
            let and = self.is_kw("and");
            self.advance();
            self.skip_nl();
            let right = self.parse_not()?;
            let kind = if and {
                NodeKind::And(Box::new(left), Box::new(right))
            } else {
                NodeKind::Or(Box::new(left), Box::new(right))
            };
            left = self.node(kind, start);
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Node, ErbError> {
        if self.is_kw("not") {
            let start = self.advance().start;
            let inner = self.parse_not()?;
            return Ok(self.node(NodeKind::Not(Box::new(inner)), start));
        }
        self.parse_expr()
    }

    /// Assignment level (right associative).
    fn parse_expr(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        if let Tok::Ident(name) = self.tok().clone()
            && !KEYWORDS.contains(&name.as_str())
            && !name.ends_with(['?', '!'])
        {
            if matches!(self.tok_at(1), Tok::Op("=")) {
                self.advance();
                self.advance();
                self.skip_nl();
                self.declare(&name);
                let value = self.parse_expr()?;
                return Ok(self.node(NodeKind::Assign(name, Box::new(value)), start));
            }
            if let Tok::Op(op @ ("||=" | "&&=" | "+=" | "-=" | "*=")) = *self.tok_at(1) {
                self.advance();
                self.advance();
                self.skip_nl();
                self.declare(&name);
                let value = self.parse_expr()?;
                return Ok(self.node(NodeKind::OpAssign(name, op, Box::new(value)), start));
            }
        }
        let left = self.parse_ternary()?;
        if self.is_op("=") {
            self.advance();
            self.skip_nl();
            let value = self.parse_expr()?;
            return match left.kind {
                NodeKind::Index(recv, args) => {
                    Ok(self.node(NodeKind::IndexAssign(recv, args, Box::new(value)), start))
                }
                _ => Err(self.source.error(
                    ErrorKind::Unsupported,
                    left.start,
                    left.end,
                    "only local variables and `ENV[...]` can be assigned in ERB".to_owned(),
                    Some(super::SUPPORTED_HINT.to_owned()),
                )),
            };
        }
        if self.is_op(",") && matches!(left.kind, NodeKind::Var(_) | NodeKind::Call { .. }) {
            // `a, b = ...`
            if self.tokens[self.pos..]
                .iter()
                .take_while(|t| !matches!(t.tok, Tok::Nl | Tok::Semi))
                .any(|t| t.tok == Tok::Op("="))
            {
                return Err(self.unsupported_here(start, "multiple assignments"));
            }
        }
        Ok(left)
    }

    fn parse_ternary(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let cond = self.parse_range()?;
        if self.is_op("?") {
            self.advance();
            self.skip_nl();
            let then = self.parse_ternary()?;
            self.skip_nl();
            if let Tok::Label(_) = self.tok() {
                return Err(self.unexpected("`:` with a space before it"));
            }
            self.expect_op(":")?;
            self.skip_nl();
            let other = self.parse_ternary()?;
            return Ok(self.node(NodeKind::If(Box::new(cond), vec![then], vec![other]), start));
        }
        Ok(cond)
    }

    fn parse_range(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let left = self.parse_oror()?;
        if self.is_op("..") || self.is_op("...") {
            let exclusive = self.is_op("...");
            let op_end = self.advance().end;
            let right = if matches!(
                self.tok(),
                Tok::Op("]" | ")") | Tok::Nl | Tok::Semi | Tok::InsertClose | Tok::Eof
            ) {
                // An endless range: `5..`.
                Node {
                    kind: NodeKind::Nil,
                    start: op_end,
                    end: op_end,
                }
            } else {
                self.parse_oror()?
            };
            return Ok(self.node(
                NodeKind::Range(Box::new(left), Box::new(right), exclusive),
                start,
            ));
        }
        Ok(left)
    }

    fn parse_oror(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_andand()?;
        while self.is_op("||") {
            self.advance();
            self.skip_nl();
            let right = self.parse_andand()?;
            left = self.node(NodeKind::Or(Box::new(left), Box::new(right)), start);
        }
        Ok(left)
    }

    fn parse_andand(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_eq()?;
        while self.is_op("&&") {
            self.advance();
            self.skip_nl();
            let right = self.parse_eq()?;
            left = self.node(NodeKind::And(Box::new(left), Box::new(right)), start);
        }
        Ok(left)
    }

    fn parse_eq(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let left = self.parse_cmp()?;
        for op in ["==", "!=", "===", "<=>"] {
            if self.is_op(op) {
                self.advance();
                self.skip_nl();
                let right = self.parse_cmp()?;
                let op: &'static str = match op {
                    "==" => "==",
                    "!=" => "!=",
                    "===" => "===",
                    _ => "<=>",
                };
                return Ok(self.node(NodeKind::Binary(op, Box::new(left), Box::new(right)), start));
            }
        }
        if self.is_op("=~") || self.is_op("!~") {
            let op: &'static str = if self.is_op("=~") { "=~" } else { "!~" };
            self.advance();
            self.skip_nl();
            let right = self.parse_cmp()?;
            return Ok(self.node(NodeKind::Binary(op, Box::new(left), Box::new(right)), start));
        }
        Ok(left)
    }

    fn parse_cmp(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_additive()?;
        loop {
            let op: &'static str = match self.tok() {
                Tok::Op("<") => "<",
                Tok::Op(">") => ">",
                Tok::Op("<=") => "<=",
                Tok::Op(">=") => ">=",
                _ => return Ok(left),
            };
            self.advance();
            self.skip_nl();
            let right = self.parse_additive()?;
            left = self.node(NodeKind::Binary(op, Box::new(left), Box::new(right)), start);
        }
    }

    fn parse_additive(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_mul()?;
        loop {
            let op: &'static str = match self.tok() {
                Tok::Op("+") => "+",
                Tok::Op("-") => "-",
                _ => return Ok(left),
            };
            self.advance();
            self.skip_nl();
            let right = self.parse_mul()?;
            left = self.node(NodeKind::Binary(op, Box::new(left), Box::new(right)), start);
        }
    }

    fn parse_mul(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut left = self.parse_unary()?;
        loop {
            let op: &'static str = match self.tok() {
                Tok::Op("*") => "*",
                Tok::Op("/") => "/",
                Tok::Op("%") => "%",
                _ => return Ok(left),
            };
            self.advance();
            self.skip_nl();
            let right = self.parse_unary()?;
            left = self.node(NodeKind::Binary(op, Box::new(left), Box::new(right)), start);
        }
    }

    fn parse_unary(&mut self) -> Result<Node, ErbError> {
        if self.depth >= MAX_DEPTH {
            let t = self.token();
            return Err(self.source.error(
                ErrorKind::Unsupported,
                t.start,
                t.end,
                format!("expressions nested more than {MAX_DEPTH} levels deep"),
                None,
            ));
        }
        self.depth += 1;
        let result = self.parse_unary_inner();
        self.depth -= 1;
        result
    }

    fn parse_unary_inner(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        if self.is_op("!") {
            self.advance();
            let inner = self.parse_unary()?;
            return Ok(self.node(NodeKind::Not(Box::new(inner)), start));
        }
        if self.is_op("-")
            && matches!(self.tok_at(1), Tok::Int(_) | Tok::Float(_))
            && !self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].space_before
        {
            // A negative literal: `-7.to_s` is `(-7).to_s`, but `-2 ** 2` is `-(2 ** 2)`.
            self.advance();
            if !matches!(self.tok_at(1), Tok::Op("**")) {
                let literal = &mut self.tokens[self.pos];
                literal.tok = match literal.tok {
                    Tok::Int(i) => Tok::Int(-i),
                    Tok::Float(f) => Tok::Float(-f),
                    ref other => other.clone(),
                };
                literal.start = start;
                return self.parse_unary();
            }
        }
        if self.is_op("-") {
            self.advance();
            let inner = self.parse_unary()?;
            let kind = match inner.kind {
                NodeKind::Int(i) => NodeKind::Int(-i),
                NodeKind::Float(f) => NodeKind::Float(-f),
                other => NodeKind::Neg(Box::new(Node {
                    kind: other,
                    ..inner
                })),
            };
            return Ok(self.node(kind, start));
        }
        if self.is_op("+") {
            self.advance();
            return self.parse_unary();
        }
        if self.is_op("&") || self.is_op("*") || self.is_op("**") {
            return Err(self.unsupported_here(start, "splat and block-pass arguments"));
        }
        let base = self.parse_postfix()?;
        if self.is_op("**") {
            self.advance();
            let exp = self.parse_unary()?;
            return Ok(self.node(NodeKind::Binary("**", Box::new(base), Box::new(exp)), start));
        }
        Ok(base)
    }

    fn parse_postfix(&mut self) -> Result<Node, ErbError> {
        let start = self.token().start;
        let mut node = self.parse_primary()?;
        loop {
            if self.is_op(".") || self.is_op("&.") {
                let safe = self.is_op("&.");
                self.advance();
                self.skip_nl();
                let name = match self.tok().clone() {
                    Tok::Ident(n) | Tok::Const(n) => n,
                    Tok::Label(n) => {
                        return Err(self.unexpected(&format!("a method name (not `{n}:`)")));
                    }
                    Tok::Op("(") => "call".to_owned(),
                    _ => return Err(self.unexpected("a method name")),
                };
                if !self.is_op("(") {
                    self.advance();
                }
                if self.is_op("=") && !matches!(self.tok_at(1), Tok::Op("=")) {
                    return Err(self.unsupported_here(start, "attribute assignments"));
                }
                let (args, block) = self.parse_call_rest(false)?;
                node = self.node(
                    NodeKind::Call {
                        recv: Some(Box::new(node)),
                        name,
                        args,
                        block,
                        safe,
                    },
                    start,
                );
            } else if self.is_op("::") {
                self.advance();
                match self.tok().clone() {
                    Tok::Const(c) => {
                        self.advance();
                        node = match node.kind {
                            NodeKind::Const(mut path) => {
                                path.push(c);
                                self.node(NodeKind::Const(path), start)
                            }
                            _ => return Err(self.unexpected("a constant path")),
                        };
                    }
                    Tok::Ident(name) => {
                        self.advance();
                        let (args, block) = self.parse_call_rest(false)?;
                        node = self.node(
                            NodeKind::Call {
                                recv: Some(Box::new(node)),
                                name,
                                args,
                                block,
                                safe: false,
                            },
                            start,
                        );
                    }
                    _ => return Err(self.unexpected("a constant name")),
                }
            } else if self.is_op("[") && !self.token().space_before {
                self.advance();
                let args = self.parse_list("]")?;
                node = self.node(NodeKind::Index(Box::new(node), args), start);
            } else {
                return Ok(node);
            }
        }
    }

    /// Can the current token start a command argument (`foo "x"`, `require "dotenv"`)?
    fn starts_command_arg(&self) -> bool {
        let t = self.token();
        if !t.space_before {
            return false;
        }
        match &t.tok {
            Tok::Str(_)
            | Tok::XStr(_)
            | Tok::Words(_)
            | Tok::Symbols(_)
            | Tok::Regex(..)
            | Tok::Int(_)
            | Tok::Float(_)
            | Tok::Symbol(_)
            | Tok::Const(_)
            | Tok::Label(_)
            | Tok::Op("[" | "::" | "!" | "(") => true,
            Tok::Ident(name) => {
                !KEYWORDS.contains(&name.as_str())
                    || matches!(
                        name.as_str(),
                        "nil" | "true" | "false" | "self" | "not" | "defined?" | "__dir__"
                    )
            }
            _ => false,
        }
    }

    /// Arguments (in parentheses, or a command's bare arguments) and an optional block.
    fn parse_call_rest(
        &mut self,
        allow_command: bool,
    ) -> Result<(Vec<Node>, Option<Box<Block>>), ErbError> {
        let outer_pass = self.block_pass.take();
        let result = if self.is_op("(") && !self.token().space_before {
            self.advance();
            let args = self.parse_list(")")?;
            match self.block_pass.take() {
                Some(block) => Ok((args, Some(block))),
                None => Ok((args, self.parse_block(false)?)),
            }
        } else if self.starts_command_arg() && (allow_command || !self.is_op("[")) {
            let args = self.parse_command_args()?;
            match self.block_pass.take() {
                Some(block) => Ok((args, Some(block))),
                None => Ok((args, self.parse_block(true)?)),
            }
        } else {
            Ok((Vec::new(), self.parse_block(false)?))
        };
        self.block_pass = outer_pass;
        result
    }

    fn parse_command_args(&mut self) -> Result<Vec<Node>, ErbError> {
        let mut args = Vec::new();
        let mut pairs = Vec::new();
        let start = self.token().start;
        loop {
            self.parse_arg(&mut args, &mut pairs)?;
            if self.is_op(",") {
                self.advance();
                self.skip_nl();
            } else {
                break;
            }
        }
        if !pairs.is_empty() {
            args.push(self.node(NodeKind::Hash(pairs), start));
        }
        Ok(args)
    }

    fn parse_arg(
        &mut self,
        args: &mut Vec<Node>,
        pairs: &mut Vec<(Node, Node)>,
    ) -> Result<(), ErbError> {
        let start = self.token().start;
        if self.is_op("&")
            && let Tok::Symbol(method) = self.tok_at(1).clone()
        {
            // `&:name` is the block `{ |x| x.name }`.
            self.advance();
            self.advance();
            let end = self.prev_end();
            let param = "\u{0}it".to_owned();
            let recv = Node {
                kind: NodeKind::Var(param.clone()),
                start,
                end,
            };
            let call = NodeKind::Call {
                recv: Some(Box::new(recv)),
                name: method,
                args: Vec::new(),
                block: None,
                safe: false,
            };
            let body = vec![Node {
                kind: call,
                start,
                end,
            }];
            self.block_pass = Some(Box::new(Block {
                params: vec![param],
                body,
            }));
            return Ok(());
        }
        if let Tok::Label(name) = self.tok().clone() {
            self.advance();
            self.skip_nl();
            let key = self.node(NodeKind::Sym(name), start);
            let value = self.parse_expr()?;
            pairs.push((key, value));
            return Ok(());
        }
        let value = self.parse_expr_stmt_no_modifier()?;
        if self.is_op("=>") {
            self.advance();
            self.skip_nl();
            let v = self.parse_expr()?;
            pairs.push((value, v));
        } else {
            args.push(value);
        }
        Ok(())
    }

    fn parse_expr_stmt_no_modifier(&mut self) -> Result<Node, ErbError> {
        self.parse_not()
    }

    /// A comma-separated list up to `close` (newlines allowed), with `key: value` / `k => v`
    /// pairs collected into a trailing hash.
    fn parse_list(&mut self, close: &str) -> Result<Vec<Node>, ErbError> {
        let mut args = Vec::new();
        let mut pairs = Vec::new();
        let start = self.token().start;
        loop {
            self.skip_nl();
            if self.is_op(close) {
                self.advance();
                break;
            }
            self.parse_arg(&mut args, &mut pairs)?;
            self.skip_nl();
            if self.is_op(",") {
                self.advance();
            } else if self.is_op(close) {
                self.advance();
                break;
            } else {
                return Err(self.unexpected(&format!("`,` or `{close}`")));
            }
        }
        if !pairs.is_empty() {
            args.push(self.node(NodeKind::Hash(pairs), start));
        }
        Ok(args)
    }

    fn parse_block(&mut self, do_only: bool) -> Result<Option<Box<Block>>, ErbError> {
        let close = if self.is_op("{") && !do_only {
            "}"
        } else if self.is_kw("do") {
            "end"
        } else {
            return Ok(None);
        };
        self.advance();
        self.skip_nl();
        let mut params = Vec::new();
        if self.is_op("||") {
            self.advance();
        } else if self.is_op("|") {
            self.advance();
            loop {
                match self.tok().clone() {
                    Tok::Ident(name) if !KEYWORDS.contains(&name.as_str()) => {
                        self.advance();
                        params.push(name);
                    }
                    Tok::Op("|") => {
                        self.advance();
                        break;
                    }
                    Tok::Op(",") => {
                        self.advance();
                    }
                    _ => return Err(self.unexpected("a block parameter name")),
                }
            }
        }
        self.scopes.push(params.iter().cloned().collect());
        let body = self.parse_stmts();
        self.scopes.pop();
        let body = body?;
        if close == "}" {
            self.expect_op("}")?;
        } else {
            self.expect_kw("end")?;
        }
        Ok(Some(Box::new(Block { params, body })))
    }

    fn parse_parts(&mut self, parts: Vec<StrPart>) -> Result<Vec<Part>, ErbError> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                StrPart::Lit(s) => out.push(Part::Lit(s)),
                StrPart::Code(mut tokens, start, end) => {
                    tokens.push(Token {
                        tok: Tok::Eof,
                        start: end,
                        end,
                        space_before: true,
                    });
                    let mut inner = Parser {
                        source: self.source,
                        tokens,
                        pos: 0,
                        scopes: std::mem::take(&mut self.scopes),
                        block_pass: None,
                        depth: self.depth,
                    };
                    let body = inner.parse_stmts();
                    let trailing = if matches!(inner.tok(), Tok::Eof) {
                        None
                    } else {
                        Some(inner.unexpected("`}`"))
                    };
                    self.scopes = std::mem::take(&mut inner.scopes);
                    let body = body?;
                    if let Some(err) = trailing {
                        return Err(err);
                    }
                    let _ = start;
                    out.push(Part::Code(body));
                }
            }
        }
        Ok(out)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over every primary expression form"
    )]
    fn parse_primary(&mut self) -> Result<Node, ErbError> {
        let t = self.token().clone();
        let start = t.start;
        match t.tok {
            Tok::Int(i) => {
                self.advance();
                Ok(self.node(NodeKind::Int(i), start))
            }
            Tok::Float(f) => {
                self.advance();
                Ok(self.node(NodeKind::Float(f), start))
            }
            Tok::Str(parts) => {
                self.advance();
                let mut parts = self.parse_parts(parts)?;
                // Adjacent string literals concatenate: "a" "b".
                while let Tok::Str(more) = self.tok().clone() {
                    self.advance();
                    parts.extend(self.parse_parts(more)?);
                }
                Ok(self.node(NodeKind::Str(parts), start))
            }
            Tok::XStr(parts) => {
                self.advance();
                let parts = self.parse_parts(parts)?;
                Ok(self.node(NodeKind::XStr(parts), start))
            }
            Tok::Words(words) => {
                self.advance();
                Ok(self.node(NodeKind::Words(words), start))
            }
            Tok::Symbols(words) => {
                self.advance();
                Ok(self.node(NodeKind::Symbols(words), start))
            }
            Tok::Symbol(s) => {
                self.advance();
                Ok(self.node(NodeKind::Sym(s), start))
            }
            Tok::Regex(parts, flags) => {
                self.advance();
                let parts = self.parse_parts(parts)?;
                Ok(self.node(NodeKind::Regex(parts, flags), start))
            }
            Tok::Print(index) => {
                self.advance();
                Ok(self.node(NodeKind::Print(index), start))
            }
            Tok::InsertOpen => {
                self.advance();
                let body = self.parse_stmts()?;
                if !matches!(self.tok(), Tok::InsertClose) {
                    return Err(self.unexpected("the end of the `<%= %>` tag"));
                }
                self.advance();
                Ok(self.node(NodeKind::Insert(body), start))
            }
            Tok::Op("(") => {
                self.advance();
                let body = self.parse_stmts()?;
                self.expect_op(")")?;
                Ok(self.node(NodeKind::Seq(body), start))
            }
            Tok::Op("[") => {
                self.advance();
                let items = self.parse_list("]")?;
                Ok(self.node(NodeKind::Array(items), start))
            }
            Tok::Op("{") => {
                self.advance();
                let items = self.parse_list("}")?;
                let mut pairs = Vec::new();
                for item in items {
                    match item.kind {
                        NodeKind::Hash(p) => pairs.extend(p),
                        _ => return Err(self.unexpected("`key => value` in a hash")),
                    }
                }
                Ok(self.node(NodeKind::Hash(pairs), start))
            }
            Tok::Op("::") => {
                self.advance();
                match self.tok().clone() {
                    Tok::Const(c) => {
                        self.advance();
                        Ok(self.node(NodeKind::Const(vec![c]), start))
                    }
                    _ => Err(self.unexpected("a constant name")),
                }
            }
            Tok::Op("->") => Err(self.unsupported_here(start, "lambdas")),
            Tok::Label(name) => {
                // `{ key: value }` handled by parse_list; a label elsewhere is a syntax error.
                Err(self.unexpected(&format!("an expression (found the label `{name}:`)")))
            }
            Tok::Const(name) => {
                self.advance();
                if self.is_op("(") && !self.token().space_before {
                    let (args, block) = self.parse_call_rest(false)?;
                    return Ok(self.node(
                        NodeKind::Call {
                            recv: None,
                            name,
                            args,
                            block,
                            safe: false,
                        },
                        start,
                    ));
                }
                Ok(self.node(NodeKind::Const(vec![name]), start))
            }
            Tok::Ident(name) => self.parse_ident(name, start),
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn parse_ident(&mut self, name: String, start: usize) -> Result<Node, ErbError> {
        match name.as_str() {
            "nil" | "true" | "false" | "self" | "__dir__" | "__FILE__" => {
                self.advance();
                let kind = match name.as_str() {
                    "nil" => NodeKind::Nil,
                    "true" => NodeKind::True,
                    "false" => NodeKind::False,
                    "self" => NodeKind::SelfRef,
                    "__dir__" => NodeKind::Dir,
                    _ => NodeKind::File,
                };
                Ok(self.node(kind, start))
            }
            "if" | "unless" => {
                self.advance();
                self.parse_if(start, name == "unless")
            }
            "begin" => {
                self.advance();
                self.parse_begin(start)
            }
            "defined?" => {
                self.advance();
                let paren = self.is_op("(");
                if paren {
                    self.advance();
                }
                let inner = self.parse_expr()?;
                if paren {
                    self.expect_op(")")?;
                }
                Ok(self.node(NodeKind::Defined(Box::new(inner)), start))
            }
            "next" | "break" => {
                self.advance();
                let value = if matches!(
                    self.tok(),
                    Tok::Nl | Tok::Semi | Tok::Eof | Tok::InsertClose | Tok::Op("}")
                ) || self.is_kw("if")
                    || self.is_kw("unless")
                    || self.is_kw("end")
                {
                    None
                } else {
                    Some(Box::new(self.parse_expr()?))
                };
                let kind = if name == "next" {
                    NodeKind::Next(value)
                } else {
                    NodeKind::Break(value)
                };
                Ok(self.node(kind, start))
            }
            "then" | "do" | "end" | "else" | "elsif" | "rescue" | "ensure" | "when" | "in"
            | "and" | "or" => Err(self.unexpected("an expression")),
            "def" => Err(self.unsupported_here(start, "method definitions")),
            "class" | "module" => Err(self.unsupported_here(start, "class and module definitions")),
            "case" => Err(self.unsupported_here(start, "`case` expressions")),
            "while" | "until" | "for" | "redo" | "retry" => {
                Err(self.unsupported_here(start, "loops other than `.each`"))
            }
            "return" | "yield" | "super" | "alias" | "undef" | "__LINE__" | "__method__" => {
                Err(self.unsupported_here(start, &format!("`{name}` statements")))
            }
            _ => {
                self.advance();
                if self.is_local(&name) && (!self.is_op("(") || self.token().space_before) {
                    return Ok(self.node(NodeKind::Var(name), start));
                }
                let (args, block) = self.parse_call_rest(true)?;
                Ok(self.node(
                    NodeKind::Call {
                        recv: None,
                        name,
                        args,
                        block,
                        safe: false,
                    },
                    start,
                ))
            }
        }
    }

    fn parse_if(&mut self, start: usize, negate: bool) -> Result<Node, ErbError> {
        let cond = self.parse_expr_stmt()?;
        let cond = if negate {
            let (s, e) = (cond.start, cond.end);
            Node {
                kind: NodeKind::Not(Box::new(cond)),
                start: s,
                end: e,
            }
        } else {
            cond
        };
        if self.is_kw("then") {
            self.advance();
        } else if !matches!(self.tok(), Tok::Nl | Tok::Semi) {
            return Err(self.unexpected("`then` or a line break after the condition"));
        }
        let then = self.parse_stmts()?;
        let other = if self.is_kw("elsif") && !negate {
            let s = self.advance().start;
            vec![self.parse_if(s, false)?]
        } else if self.is_kw("else") {
            self.advance();
            let other = self.parse_stmts()?;
            self.expect_kw("end")?;
            other
        } else {
            self.expect_kw("end")?;
            Vec::new()
        };
        Ok(self.node(NodeKind::If(Box::new(cond), then, other), start))
    }

    fn parse_begin(&mut self, start: usize) -> Result<Node, ErbError> {
        let body = self.parse_stmts()?;
        let mut rescues = Vec::new();
        while self.is_kw("rescue") {
            self.advance();
            let mut classes = Vec::new();
            let mut var = None;
            while let Tok::Const(_) | Tok::Op("::") = self.tok() {
                classes.push(self.parse_postfix()?);
                if self.is_op(",") {
                    self.advance();
                    self.skip_nl();
                }
            }
            if self.is_op("=>") {
                self.advance();
                match self.tok().clone() {
                    Tok::Ident(name) if !KEYWORDS.contains(&name.as_str()) => {
                        self.advance();
                        self.declare(&name);
                        var = Some(name);
                    }
                    _ => return Err(self.unexpected("a variable name")),
                }
            }
            if self.is_kw("then") {
                self.advance();
            }
            let body = self.parse_stmts()?;
            rescues.push(Rescue { classes, var, body });
        }
        let mut other = Vec::new();
        if self.is_kw("else") {
            self.advance();
            other = self.parse_stmts()?;
        }
        let mut ensure = Vec::new();
        if self.is_kw("ensure") {
            self.advance();
            ensure = self.parse_stmts()?;
        }
        self.expect_kw("end")?;
        Ok(self.node(NodeKind::Begin(body, rescues, other, ensure), start))
    }
}
