//! Heredocs: `RUN <<EOF`, `COPY <<EOF /dst`, `<<-EOF` (leading tabs
//! stripped), `<<"EOF"` / `<<'EOF'` (no expansion of the body), several per
//! line, and an optional file descriptor (`3<<EOF`).

use crate::error::ErrorKind;
use crate::shell::{Lexer, NoEnv};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body as written, every line with its newline, the terminator excluded.
    pub content: String,
    /// Whether variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// The file descriptor before `<<` (0 when absent).
    pub file_descriptor: u32,
}

impl Heredoc {
    /// The body as the builder should use it: with `<<-`, leading tabs are
    /// removed from every line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        chomp_content(&self.content)
    }
}

/// Removes leading tabs from every line.
pub fn chomp_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// Recognises one word as a heredoc opener (`<<EOF`, `<<-"EOF"`, `2<<EOF`).
/// Returns `Ok(None)` for words that are not heredocs.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ErrorKind> {
    let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
    let (fd, rest) = word.split_at(digits);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // Blanks may separate `<<` (or `<<-`) from the delimiter.
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\u{c}']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = if fd.is_empty() {
        0
    } else {
        fd.parse()
            .map_err(|_| ErrorKind::InvalidHeredoc(word.to_string()))?
    };
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex
        .process_words(rest, &NoEnv)
        .map_err(|_| ErrorKind::InvalidHeredoc(word.to_string()))?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex
        .process_words(rest, &NoEnv)
        .map_err(|_| ErrorKind::InvalidHeredoc(word.to_string()))?;
    if raw.len() != 1 {
        return Err(ErrorKind::InvalidHeredoc(word.to_string()));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '"' || *c == '\'').count();
    Ok(Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words[0].clone(),
        content: String::new(),
        chomp,
        file_descriptor,
    }))
}

/// All heredoc openers on an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ErrorKind> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    // BuildKit ignores lexing errors here: such a line simply has no heredocs.
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut word = words[i].clone();
        // `<< EOF`: the lexer keeps blanks after `<<` in the same word.
        let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
        if &word[digits..] == "<<" && i + 1 < words.len() {
            word.push(' ');
            word.push_str(&words[i + 1]);
            i += 1;
        }
        if let Some(h) = parse_heredoc(&word)? {
            out.push(h);
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_openers() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("EOF", true, false));
        let h = parse_heredoc("<<-'EOT'").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("EOT", false, true));
        let h = parse_heredoc("3<<\"X\"").unwrap().unwrap();
        assert_eq!((h.file_descriptor, h.expand), (3, false));
        assert_eq!(parse_heredoc("<<").unwrap(), None);
        assert_eq!(parse_heredoc("a<<EOF").unwrap(), None);
        assert_eq!(parse_heredoc("<<<EOF").unwrap(), None);
    }

    #[test]
    fn finds_several_per_line() {
        let hs = heredocs_from_line("COPY <<FILE1 <<\"FILE2\" /dest/").unwrap();
        let names: Vec<_> = hs.iter().map(|h| (h.name.as_str(), h.expand)).collect();
        assert_eq!(names, vec![("FILE1", true), ("FILE2", false)]);
        assert!(heredocs_from_line("RUN echo '<<EOF'").unwrap().is_empty());
    }

    #[test]
    fn delimiter_forms() {
        let name = |w: &str| parse_heredoc(w).unwrap().map(|h| (h.name, h.expand));
        for w in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(name(w).unwrap().0, "EOF", "{w}");
        }
        for w in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(w).is_err(), "{w}");
        }
        for w in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(w).unwrap(), None, "{w}");
        }
        assert_eq!(name("<<eo'f'"), Some(("eof".into(), false)));
        assert_eq!(name("<<eo\\'f"), Some(("eo'f".into(), true)));
        assert_eq!(name("<<'e'o\\'f"), Some(("eo'f".into(), false)));
        assert_eq!(name("<<'one two'"), Some(("one two".into(), false)));
    }

    #[test]
    fn line_forms() {
        let names = |l: &str| -> Vec<String> {
            heredocs_from_line(l)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("RUN <<$EOF"), vec!["$EOF"]);
        assert_eq!(names("RUN <<  EOF  > foo"), vec!["EOF"]);
        assert_eq!(names("RUN << -EOF"), vec!["-EOF"]);
        assert_eq!(names("RUN 4<<EOF"), vec!["EOF"]);
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN x<< EOF").is_empty());
    }

    #[test]
    fn chomps_tabs() {
        assert_eq!(chomp_content("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
