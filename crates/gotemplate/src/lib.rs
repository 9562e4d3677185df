//! # berth-gotemplate
//!
//! Go's `text/template` language as the docker CLI evaluates its `--format`
//! flag, run over a [`serde_json::Value`] whose objects carry Docker's field
//! names.
//!
//! - Text, actions, `{{-`/`-}}` trim markers, `{{/* comments */}}`.
//! - Field chains (`{{.State.Status}}`), `{{.}}`, `{{$}}`, variables
//!   (`{{$x := .A}}`, `{{$x = .B}}`), pipelines (`{{.A | json}}`),
//!   parenthesised sub-pipelines, string/raw-string/char/number/bool/nil
//!   literals.
//! - `if` / `else if` / `else`, `range` (lists, maps in key order, integers;
//!   one or two variables; `else`; `break`/`continue`), `with` / `else with`,
//!   `define` / `template` / `block`.
//! - Go's builtins (`and or not len index slice eq ne lt le gt ge print
//!   printf println html js urlquery`) and the docker CLI's functions
//!   (`json split join title lower upper pad truncate`).
//! - Values print as Go's `fmt` prints the types they decode to: strings
//!   as-is, integers without decimals, floats as `float64` (`1.5`,
//!   `1e+06`), `[a b]`, `map[k:v]`, `<nil>` inside them; a missing map key
//!   and a null value print `<no value>`, as text/template prints a nil
//!   `interface{}`.
//!
//! Before parsing, the two-character sequences `\t` and `\n` (as typed in a
//! shell) become a tab and a newline, as the docker CLI does.
//!
//! ```
//! use berth_gotemplate::Template;
//! let t = Template::parse(r#"{{.ID}}\t{{join .Names ","}}"#).unwrap();
//! let data = serde_json::json!({"ID": "abc", "Names": ["a", "b"]});
//! assert_eq!(t.execute(&data).unwrap(), "abc\ta,b");
//! ```

mod exec;
mod funcs;
mod gofmt;
mod lex;
mod parse;

pub use exec::MethodFn;
use exec::Val;
pub use gofmt::StructShape;

/// Errors from parsing or executing a template. The messages follow Go's
/// (`template: :1: function "foo" not defined`, `template: :1:2: executing
/// "" at <.A.B>: ...`).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Exec(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    tree: parse::Tree,
    structs: &'static [StructShape],
}

/// Makes `shapes` the struct shapes of this thread while alive.
struct StructsGuard(&'static [StructShape]);

impl StructsGuard {
    fn set(shapes: &'static [StructShape]) -> StructsGuard {
        StructsGuard(gofmt::STRUCTS.with(|s| s.replace(shapes)))
    }
}

impl Drop for StructsGuard {
    fn drop(&mut self) {
        gofmt::STRUCTS.with(|s| s.set(self.0));
    }
}

/// Replaces the literal two-character sequences `\t` and `\n` with a tab and
/// a newline, scanning left to right (as Go's `strings.NewReplacer`).
fn unescape(format: &str) -> String {
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('t') {
            out.push('\t');
            rest = r;
        } else if let Some(r) = after.strip_prefix('n') {
            out.push('\n');
            rest = r;
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    1 + src.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

impl Template {
    /// Parses a template (after replacing literal `\t` and `\n`).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let src = unescape(text);
        match parse::parse(&src) {
            Ok(tree) => Ok(Template {
                src,
                tree,
                structs: &[],
            }),
            Err((msg, pos)) => Err(TemplateError::Parse(format!(
                "template: :{}: {msg}",
                line_of(&src, pos)
            ))),
        }
    }

    /// Objects of these shapes print as the Go structs they stand for (`{{.Mounts}}` prints
    /// `[{bind  /src /dst  true rprivate}]` as the docker CLI does), not as maps.
    pub fn with_structs(mut self, shapes: &'static [StructShape]) -> Template {
        self.structs = shapes;
        self
    }

    /// Executes the template with `data` as dot.
    pub fn execute(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        let _g = StructsGuard::set(self.structs);
        exec::execute(&self.tree, &self.src, Val::B(data), None, None)
    }

    /// Executes the template with `data` as dot, whose methods (`{{.Label "k"}}`, as the
    /// docker CLI's format contexts have) `methods` answers.
    pub fn execute_with_methods(
        &self,
        data: &serde_json::Value,
        methods: MethodFn<'_>,
    ) -> Result<String, TemplateError> {
        let _g = StructsGuard::set(self.structs);
        exec::execute(&self.tree, &self.src, Val::B(data), None, Some(methods))
    }

    /// Executes the template in header mode: every field of the data
    /// evaluates to `header_for(field)`, and the docker functions that
    /// would transform it (`json split join title lower upper truncate`)
    /// return it unchanged, as the docker CLI renders table headers.
    pub fn execute_header(
        &self,
        header_for: &dyn Fn(&str) -> String,
    ) -> Result<String, TemplateError> {
        exec::execute(&self.tree, &self.src, Val::Header, Some(header_for), None)
    }
}

/// Docker CLI's table handling: if `format` starts with "table", returns
/// (true, rest with the leading "table" and one following space/tab
/// removed); else (false, format).
pub fn strip_table_prefix(format: &str) -> (bool, &str) {
    match format.strip_prefix("table") {
        Some(rest) => (true, rest.strip_prefix([' ', '\t']).unwrap_or(rest)),
        None => (false, format),
    }
}

/// Header line for a `table` format: each `{{.Field}}` action replaced by the
/// header the caller maps it to (`header_for("ID")` → `"IMAGE ID"`), other
/// text kept. Pass the format without its `table` prefix.
pub fn render_header(
    format: &str,
    header_for: &dyn Fn(&str) -> String,
) -> Result<String, TemplateError> {
    Template::parse(format)?.execute_header(header_for)
}
