//! `Command` and `Token`: a command line held as a list of shell-ready tokens, some of which are
//! sensitive and are replaced by their redaction when a command is logged.

use crate::Secret;

/// One word (or operator) of a command line, already in shell syntax.
#[derive(Clone, PartialEq, Eq)]
pub enum Token {
    /// Text written to the shell as is: a program name, a flag, an escaped value, `&&`, `|`.
    Plain(String),
    /// Text that must not appear in logs, plans or summaries; `redaction` is shown instead.
    Sensitive { text: String, redaction: String },
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Plain(text) => write!(f, "{text:?}"),
            Token::Sensitive { redaction, .. } => write!(f, "Sensitive({redaction:?})"),
        }
    }
}

/// A command line: tokens joined by single spaces when rendered, exactly as Kamal joins its
/// command arrays. Build with [`Command::new`] and the `arg*` methods, or combine several commands
/// with [`Command::combine`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    tokens: Vec<Token>,
    stdin: Option<Secret<String>>,
}

impl Command {
    /// A command starting with `program` (e.g. `docker`, `mkdir`).
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            tokens: vec![Token::Plain(program.into())],
            stdin: None,
        }
    }

    /// A command from plain tokens.
    pub fn from_words<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            tokens: words
                .into_iter()
                .map(|word| Token::Plain(word.into()))
                .collect(),
            stdin: None,
        }
    }

    /// Appends one plain token.
    #[must_use]
    pub fn arg(mut self, word: impl Into<String>) -> Self {
        self.tokens.push(Token::Plain(word.into()));
        self
    }

    /// Appends several plain tokens.
    #[must_use]
    pub fn args<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tokens
            .extend(words.into_iter().map(|word| Token::Plain(word.into())));
        self
    }

    /// Appends tokens that may include sensitive ones.
    #[must_use]
    pub fn tokens(mut self, tokens: impl IntoIterator<Item = Token>) -> Self {
        self.tokens.extend(tokens);
        self
    }

    /// Appends a sensitive token shown as `redaction` in logs.
    #[must_use]
    pub fn sensitive(mut self, text: impl Into<String>, redaction: impl Into<String>) -> Self {
        self.tokens.push(Token::Sensitive {
            text: text.into(),
            redaction: redaction.into(),
        });
        self
    }

    /// Joins commands with an operator (`&&`, `||`, `;`, `|`, `>`, `>>`), as Kamal's `combine`.
    pub fn combine(commands: impl IntoIterator<Item = Command>, operator: &str) -> Self {
        let mut tokens = Vec::new();
        let mut stdin = None;
        for command in commands {
            if !tokens.is_empty() {
                tokens.push(Token::Plain(operator.to_owned()));
            }
            tokens.extend(command.tokens);
            stdin = stdin.or(command.stdin);
        }
        Self { tokens, stdin }
    }

    /// Feeds `data` to the command's standard input: how secrets reach a remote command without
    /// appearing in its argv (`docker login --password-stdin`).
    #[must_use]
    pub fn with_stdin(mut self, data: Secret<String>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The data for standard input, if any.
    pub fn stdin(&self) -> Option<&Secret<String>> {
        self.stdin.as_ref()
    }

    /// The tokens, for the renderer and for tests.
    pub fn as_tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// True when any token is sensitive.
    pub fn has_sensitive(&self) -> bool {
        self.tokens
            .iter()
            .any(|token| matches!(token, Token::Sensitive { .. }))
    }
}
