//! The crate's error type: every error knows the line (and column) it
//! refers to, quotes that line, and its message says how to fix it.

use std::fmt;

use crate::shell::ShellError;

/// What went wrong, without the location. The messages are written to be
/// shown to a person: they name the problem and, where one exists, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file is empty or holds only comments, blank lines and directives.
    #[error("file with no instructions — a Dockerfile needs at least a FROM instruction")]
    NoInstructions,
    /// A physical line longer than BuildKit's limit.
    #[error(
        "dockerfile line greater than max allowed size of 65535 — split it with line continuations"
    )]
    LineTooLong,
    /// `# escape=` with something other than a backslash or a backtick.
    #[error(
        "invalid escape token '{0}' does not match ` or \\ — use `# escape=\\` or `# escape=``"
    )]
    InvalidEscapeToken(String),
    /// The same parser directive twice.
    #[error("only one {0} parser directive can be used — remove the second one")]
    DuplicateDirective(String),
    /// A heredoc whose terminator never appeared.
    #[error("unterminated heredoc <<{name} started on line {start_line} — end it with a line containing only `{name}`")]
    UnterminatedHeredoc {
        /// The delimiter word.
        name: String,
        /// The line of the instruction that opened it.
        start_line: usize,
    },
    /// A heredoc delimiter that could not be lexed.
    #[error("invalid heredoc delimiter {0:?} — use a single word such as <<EOF")]
    InvalidHeredoc(String),
    /// Valid JSON in exec form, but not an array of strings.
    #[error("{0} exec form must be a JSON array of strings — quote every element, e.g. [\"echo\", \"hello\"]")]
    NotStringArray(String),
    /// `ENV PATH`, `LABEL key`: a key without its value.
    #[error("{instruction} needs a value — write `{instruction} {name}=<value>`")]
    MissingValue {
        /// ENV or LABEL.
        instruction: String,
        /// The key that has no value.
        name: String,
    },
    /// `ENV a=b c`: a later word without `=`.
    #[error("{instruction}: can't find = in {word:?} — every word must be of the form name=value")]
    MissingEquals {
        /// ENV or LABEL.
        instruction: String,
        /// The offending word.
        word: String,
    },
    /// An instruction keyword nobody knows.
    #[error("unknown instruction: {word}{}", suggestion_text(.suggestion))]
    UnknownInstruction {
        /// The keyword as written.
        word: String,
        /// The nearest known instruction, if one is close.
        suggestion: Option<String>,
    },
    /// COPY or ADD with fewer than two paths.
    #[error("{instruction} needs a source and a destination — {hint}")]
    NeedsSourceAndDest {
        /// COPY or ADD.
        instruction: String,
        /// Either a corrected line ("did you mean `COPY a .`?") or the syntax.
        hint: String,
    },
    /// A `--flag` the instruction does not take.
    #[error("unknown flag --{flag} for {instruction}{}", suggestion_text(.suggestion))]
    UnknownFlag {
        /// The instruction.
        instruction: String,
        /// The flag name, without dashes.
        flag: String,
        /// A close known flag.
        suggestion: Option<String>,
    },
    /// Any other problem with an instruction; the message includes the fix.
    #[error("{0}")]
    Invalid(String),
    /// Variable expansion failed.
    #[error("{0}")]
    Shell(#[from] ShellError),
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// An error with its place in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// First line (1-based) of the instruction or directive concerned; 0 when unknown.
    pub line: usize,
    /// Last line (1-based) of the instruction; equal to `line` for one-line instructions.
    pub end_line: usize,
    /// Column (1-based, in characters) on `line`; 0 when unknown.
    pub column: usize,
    /// The text of `line`, to quote in the message.
    pub source_line: String,
}

impl Error {
    /// An error with no location yet.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            line: 0,
            end_line: 0,
            column: 0,
            source_line: String::new(),
        }
    }

    /// Attaches a location, quoting `line` of `source`.
    pub fn at(mut self, source: &str, line: usize, end_line: usize, column: usize) -> Self {
        self.line = line;
        self.end_line = end_line.max(line);
        self.column = column;
        self.source_line = nth_line(source, line);
        self
    }

    /// The one-line form: `line N: message`.
    pub fn summary(&self) -> String {
        if self.line == 0 {
            self.kind.to_string()
        } else {
            format!("line {}: {}", self.line, self.kind)
        }
    }
}

pub(crate) fn nth_line(source: &str, line: usize) -> String {
    if line == 0 {
        return String::new();
    }
    source
        .split('\n')
        .nth(line - 1)
        .map(|l| l.trim_end_matches('\r').to_string())
        .unwrap_or_default()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        if self.line > 0 && !self.source_line.is_empty() {
            let num = self.line.to_string();
            write!(f, "\n {num} | {}", self.source_line)?;
            if self.column > 0 {
                let pad: String = self
                    .source_line
                    .chars()
                    .take(self.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(
                    f,
                    "\n {} | {pad}^ column {}",
                    " ".repeat(num.len()),
                    self.column
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Shell(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

/// Edit distance (insertions, deletions, substitutions and swaps of
/// neighbours each cost 1), used to suggest the nearest known word.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word` (case-insensitive), if it is close enough
/// to be a plausible typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (lower.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
